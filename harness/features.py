"""What a runtime claims in its ``features`` document (features.md), and the ``feature`` marker.

A case that needs a property introduced by a later spec release (idmapped mounts, network
devices, memory policy...) declares it with ``@pytest.mark.feature(PATH, contains=VALUE)``; a
runtime whose ``features`` output does not claim it skips the case, naming the property and
what the runtime reported. ``PATH`` is dotted (``linux.netDevices.enabled``): the case runs
when the value there is ``true``, a non-empty list or object, or, with ``contains``, a list
holding ``VALUE``. A property the document has no field for (``process.scheduler``) is gated on
the spec release that introduced it: ``feature("ociVersionMax", at_least="1.1.0",
what="process.scheduler")``. A runtime without a ``features`` command claims nothing (the document is
optional: features.md MAY), so such cases skip on it too.
"""

from __future__ import annotations

import json
import weakref
from typing import Any

#: What :func:`lookup` returns for a path the document does not have (None is a value there).
MISSING = object()
#: Each runtime object's document, asked for once (the runtime's claims do not change in a run).
_DOCUMENTS: weakref.WeakKeyDictionary[Any, dict[str, Any] | None] = weakref.WeakKeyDictionary()


def lookup(doc: dict[str, Any], path: str) -> Any:
    """The value at dotted ``path`` in ``doc``, or ``MISSING``."""
    node: Any = doc
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return MISSING
        node = node[key]
    return node


def version_key(text: str) -> tuple[int, int, int, int]:
    """``"1.0.2-dev"`` as a sortable key: a pre-release sorts before its release."""
    core, dash, _ = text.strip().partition("-")
    parts = [int(p) if p.isdigit() else 0 for p in core.split(".")[:3]]
    parts += [0] * (3 - len(parts))
    return parts[0], parts[1], parts[2], 0 if dash else 1


def unclaimed(
    doc: dict[str, Any] | None,
    path: str,
    contains: str | None = None,
    runtime: str = "the runtime",
    at_least: str | None = None,
    what: str | None = None,
) -> str | None:
    """Why ``doc`` does not claim ``path`` (and ``contains``), or None when it does.

    ``at_least`` is for a property the features document has no field for (process.scheduler...):
    ``path`` is then a version (``ociVersionMax``) that must be at least the spec release that
    introduced the property ``what``; an older one means the runtime does not know it."""
    if doc is None:
        return f"{runtime} has no `features` command, so it claims no support for {what or path} (features.md: the document is optional)"
    value = lookup(doc, path)
    if value is MISSING or value is None:
        return f"{runtime} does not report {path} in its `features` output: not supported by this runtime"
    if at_least is not None:
        if not isinstance(value, str) or version_key(value) < version_key(at_least):
            return (
                f"{runtime} reports {path} {json.dumps(value)} in its `features` output, older than spec v{at_least}, "
                f"which introduced {what or 'this property'}: not supported by this runtime"
            )
        return None
    if contains is not None:
        if not isinstance(value, list) or contains not in value:
            return f"{runtime} does not list {contains!r} in {path} of its `features` output ({json.dumps(value)[:200]}): not supported by this runtime"
        return None
    if value is False or value in ([], {}):
        return f"{runtime} reports {path} = {json.dumps(value)} in its `features` output: not supported by this runtime"
    return None


def document(runtime: Any) -> dict[str, Any] | None:
    """The runtime's features document, or None when it has no ``features`` command or prints no
    JSON object. Cached on the runtime object: a runtime's claims do not change during a run."""
    if runtime in _DOCUMENTS:
        return _DOCUMENTS[runtime]
    proc = runtime.call("features", check=False, timeout=30)
    doc: dict[str, Any] | None = None
    if proc.returncode == 0:
        out = proc.stdout.decode(errors="replace") if isinstance(proc.stdout, bytes) else proc.stdout
        try:
            parsed = json.loads(out)
        except json.JSONDecodeError:
            parsed = None
        doc = parsed if isinstance(parsed, dict) else None
    _DOCUMENTS[runtime] = doc
    return doc
