"""pytest plugin for `harness mutants`: run each mutant runtime on its own cases only.

``HARNESS_MUTANT_SELECT`` names a JSON file ``{runtime name: [case ids] or "*"}`` (case ids
without parameters, as in ``cases/test_x.py::test_y``). An item runs if its ``runtime``
parameter is one of those runtimes and its case id is listed for it (or the runtime has
``"*"``); every other item is deselected, so one session serves every mutant.
"""

from __future__ import annotations

import json
import os

import pytest

from harness import pytest_plugin


def _selection() -> dict[str, set[str] | None]:
    path = os.environ.get("HARNESS_MUTANT_SELECT")
    if not path:
        raise pytest.UsageError(
            "harness._mutant_select needs HARNESS_MUTANT_SELECT (the file `harness mutants` writes)"
        )
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    return {name: None if cases == "*" else set(cases) for name, cases in raw.items()}


@pytest.hookimpl(hookwrapper=True)
def pytest_generate_tests(metafunc: pytest.Metafunc):
    """Parametrize each case only with the runtimes that select it: with a hundred mutant
    runtimes, collecting every case for every runtime (then deselecting) would be ~50,000
    items per worker. The harness plugin parametrizes from ``config.stash[pytest_plugin.RUNTIMES]``; it is
    narrowed to this case's runtimes while the plugin runs, then restored."""
    config = metafunc.config
    runtimes = config.stash.get(pytest_plugin.RUNTIMES, None)
    if "runtime" not in metafunc.fixturenames or runtimes is None:
        yield
        return
    sel = _cached_selection(config)
    case = metafunc.definition.nodeid.split("[", 1)[0]
    chosen = {n: d for n, d in runtimes.items() if n in sel and ((cases := sel[n]) is None or case in cases)}
    config.stash[pytest_plugin.RUNTIMES] = chosen
    try:
        yield
    finally:
        config.stash[pytest_plugin.RUNTIMES] = runtimes


_SELECTION = pytest.StashKey[dict[str, set[str] | None]]()


def _cached_selection(config: pytest.Config) -> dict[str, set[str] | None]:
    sel = config.stash.get(_SELECTION, None)
    if sel is None:
        sel = config.stash[_SELECTION] = _selection()
    return sel


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    sel = _cached_selection(config)
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("runtime") if callspec is not None else None
        cases = sel.get(name, set()) if isinstance(name, str) else set()
        if isinstance(name, str) and name in sel and (cases is None or item.nodeid.split("[", 1)[0] in cases):
            keep.append(item)
        else:
            drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_configure(config: pytest.Config) -> None:
    """Property cases keep their examples but do not shrink a failure (a mutant needs only to
    be caught, and shrinking against a broken runtime can take many minutes), nor write a
    hypothesis database into the working tree."""
    from hypothesis import Phase, settings

    from harness import pytest_plugin

    original = pytest_plugin.hypothesis_settings

    def no_shrink():
        return settings(original(), phases=(Phase.explicit, Phase.reuse, Phase.generate), database=None)

    pytest_plugin.hypothesis_settings = no_shrink
