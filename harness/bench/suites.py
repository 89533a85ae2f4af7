"""The bench's suites behind one interface: ``harness bench`` runs the ones asked for, in order.

A suite is anything with a ``name``, a ``prepare(options)`` (before any work: refuse options it
cannot run with, or complete them, offline) and a ``run(ctx)`` (its workloads: samples through
``ctx.record``, its summary in ``ctx.summaries[name]``). Each suite module defines one as
``SUITE``; :data:`NAMES` says which module holds which, so a suite is imported only when it
runs (numpy and friends load late). A new suite is a module with a ``SUITE`` and a line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from harness.errors import HarnessError

if TYPE_CHECKING:
    from .runner import BenchContext, Options

#: suite name -> the module (in this package) whose ``SUITE`` it is, in the default order
MODULES = {"lifecycle": "lifecycle", "io": "io", "scale": "scale"}
NAMES = tuple(MODULES)


class Suite(Protocol):
    name: str

    def prepare(self, options: Options) -> None:
        """Before anything is made: raise a HarnessError for options this suite cannot run with,
        or fill in what it needs (offline; a download or a missing file fails here)."""
        ...

    def run(self, ctx: BenchContext) -> None:
        """Run the workloads, recording samples and the suite's summary in ``ctx``."""
        ...


@dataclass(frozen=True)
class FunctionSuite:
    """A :class:`Suite` made of two functions."""

    name: str
    run_fn: Callable[[BenchContext], None]
    prepare_fn: Callable[[Options], None] | None = None

    def prepare(self, options: Options) -> None:
        if self.prepare_fn is not None:
            self.prepare_fn(options)

    def run(self, ctx: BenchContext) -> None:
        self.run_fn(ctx)


def check_names(names: list[str]) -> None:
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        raise HarnessError(f"unknown suite(s) {', '.join(unknown)}; known: {', '.join(NAMES)}")


def load(names: list[str]) -> list[Suite]:
    """The suites named, in that order."""
    check_names(names)
    return [importlib.import_module(f".{MODULES[n]}", __package__).SUITE for n in names]
