"""No module of the harness uses another module's private names (issue 15: private names are
how a module keeps its guarantees; reaching past them bypasses the checks the adapter, the
journal and the process supervisor exist to make).

A private name is one with a leading underscore (not a dunder). Importing a private *module*
of the package (``from . import _linux``) is fine: the underscore there says "not public API
of the harness", not "private to one module". What is checked, in ``harness/`` and
``benchmarks/``: ``from M import _name`` and ``m._name`` where ``m`` is a harness module.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Uses of another module's private names still to go (none left); never add one: make the
#: name public instead.
KNOWN: set[str] = set()


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _module_exists(path: Path, node: ast.ImportFrom, name: str, root: Path) -> bool:
    """Whether ``from <node's module> import name`` names a module (or package), not a name in one."""
    if node.level:
        base = path.parent
        for _ in range(node.level - 1):
            base = base.parent
    else:
        base = root
    if node.module:
        base = base.joinpath(*node.module.split("."))
    return (base / f"{name}.py").is_file() or (base / name / "__init__.py").is_file()


def uses_of_private_names(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    rel = path.relative_to(root).as_posix()
    modules: set[str] = set()  # local names bound to harness modules
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("harness")):
            for alias in node.names:
                if _module_exists(path, node, alias.name, root):
                    modules.add(alias.asname or alias.name)
                elif _private(alias.name):
                    found.append(f"{rel}: from {'.' * node.level}{node.module or ''} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "harness":
                    modules.add(alias.asname or "harness")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
        ):
            found.append(f"{rel}: {node.value.id}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names():
    found = set()
    for folder in ("harness", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            found.update(uses_of_private_names(path))
    new = sorted(found - KNOWN)
    assert not new, "private names of another module used (make them public, or use what is):\n  " + "\n  ".join(new)
    gone = sorted(KNOWN - found)
    assert not gone, "no longer used, remove from KNOWN:\n  " + "\n  ".join(gone)


def test_the_check_sees_a_private_name(tmp_path):
    """The check itself can fail: a module reaching into another's private names is reported,
    its private module imports are not."""
    fake = tmp_path / "harness" / "bench" / "suite.py"
    fake.parent.mkdir(parents=True)
    (tmp_path / "harness" / "_linux.py").write_text("")
    (tmp_path / "harness" / "runtime").mkdir()
    (tmp_path / "harness" / "runtime" / "__init__.py").write_text("")
    fake.write_text(
        "from harness.runtime.process import _reaped\nfrom .. import _linux\nfrom harness import runtime\n"
        "runtime._REAPED[1] = 0\n_linux.unshare(0)\n",
        encoding="utf-8",
    )
    assert sorted(uses_of_private_names(fake, tmp_path)) == [
        "harness/bench/suite.py: from harness.runtime.process import _reaped",
        "harness/bench/suite.py: runtime._REAPED",
    ]
