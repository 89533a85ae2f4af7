"""A run session: the one way to run containers.

:func:`open_session` gives a :class:`Session` for the length of a ``with`` block: one state
root (a folder per runtime below it), the run journal (``harness cleanup`` finds what a killed
run left), the harness a child subreaper (a container's init is adopted once ``create``
returns, so its exit status is ours to read). Runtimes come from :meth:`Session.runtime`, wired
to that state root and journal. On exit, whatever the block did or raised: containers still
journaled are removed (as ``harness cleanup`` would), then the state root, then the journal;
adopted children are reaped and the subreaper setting is put back.

Users: the pytest plugin (one session per run and xdist worker), ``harness run``, ``harness
diff``, ``harness bench`` and ``benchmarks/overhead.py``.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import _linux
from . import process
from .adapter import Runtime, default_state_root_base
from .definition import RuntimeDefinition, resolve


class Session:
    """One run's state root and journal; made by :func:`open_session`."""

    def __init__(self, name: str, root: Path, journal: Any):
        self.name = name
        #: the state root; each runtime gets a folder below it
        self.root = root
        #: the run journal (:class:`harness.journal.Journal`): record before creating, release after removing
        self.journal = journal
        self.runtimes: list[Runtime] = []

    def __repr__(self) -> str:
        return f"Session({self.name!r}, root={str(self.root)!r})"

    def runtime(
        self, runtime: RuntimeDefinition | str, *, key: str | None = None, timeout: float | None = None
    ) -> Runtime:
        """A runtime (a definition, a name or a binary path) on its own state root in this
        session, ``root/KEY`` (``KEY``: the runtime's name unless given), its containers journaled."""
        definition = resolve(runtime) if isinstance(runtime, str) else runtime
        rt = Runtime(definition, self.root / (key or definition.name), timeout=timeout)
        rt.journal = self.journal
        rt.session = self
        self.runtimes.append(rt)
        return rt

    def remove_containers(self) -> list[str]:
        """Remove the containers journaled and not released yet (a block interrupted between a
        create and its cleanup), newest first, the way ``harness cleanup`` does; what could
        not be removed, as messages."""
        from .. import journal as _journal

        errors = []
        for entry in reversed(_journal.read(self.journal.path).pending):
            if entry["kind"] != "container":
                continue
            try:
                left = _journal.remove_entry(entry)
            except Exception as err:
                left = [str(err)]
            if left:
                errors += [f"container {entry['key']}: {why}" for why in left]
            else:
                self.journal.release("container", entry["key"])
        return errors

    def close(self) -> list[str]:
        """End the session (see the module's doc); what was left, as messages."""
        errors = self.remove_containers()
        process.reap_orphans()
        if errors:
            # their state is still needed to remove them: kept, with the journal, for `harness cleanup`
            errors.append(f"state root {self.root} kept for `harness cleanup`")
        else:
            shutil.rmtree(self.root, ignore_errors=True)
            self.journal.release("state_root", str(self.root))
        self.journal.close()
        for folder in (self.journal.directory, self.root.parent):
            try:
                folder.rmdir()  # only when empty: other runs may share them
            except OSError:
                pass
        return errors


@contextmanager
def open_session(name: str | None = None, *, subreaper: bool = True) -> Iterator[Session]:
    """A :class:`Session` named ``name`` (unique per run: the state root and the journal are
    named after it; default: pid and a random suffix), closed when the block ends.
    ``subreaper=False`` leaves the process's child-subreaper setting alone (for a caller that
    cannot set it, not being root)."""
    from ..journal import Journal

    name = name or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    root = default_state_root_base() / name
    was_subreaper = _linux.is_child_subreaper() if subreaper else False
    if subreaper and not was_subreaper:
        _linux.set_child_subreaper()
    journal = Journal(name)
    journal.record("state_root", str(root))
    session = Session(name, root, journal)
    try:
        yield session
    finally:
        errors = session.close()
        if subreaper and not was_subreaper:
            _linux.set_child_subreaper(False)
        if errors:
            print("harness: cleanup left: " + "; ".join(errors), file=sys.stderr)
