"""Where the harness keeps its caches and per-run state."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The user's cache folder for the harness (probe builds, downloaded root filesystems).

    ``HARNESS_CACHE_DIR`` overrides it; otherwise ``$XDG_CACHE_HOME/oci-harness`` or
    ``~/.cache/oci-harness``.
    """
    if env := os.environ.get("HARNESS_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "oci-harness"
