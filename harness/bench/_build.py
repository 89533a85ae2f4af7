"""Building ``iobench.c`` (the in-container I/O workloads) like the probe: static, cached by hash."""

from __future__ import annotations

from pathlib import Path

from harness.probe import build_static

SOURCE = Path(__file__).with_name("iobench.c")


def build_iobench(cache: Path | None = None) -> Path:
    """The path of the static ``iobench`` binary, compiled on first use and cached under
    ``cache_dir()/iobench/<key>/iobench`` (key: sha256 of source, flags and arch)."""
    return build_static(SOURCE, "iobench", cache)
