"""Building ``iobench.c`` (the in-container I/O workloads) like the probe: static, cached by hash.

It reuses the probe's helpers (compiler lookup, static check, atomic writes, the flags); only
the compile step is its own, because the probe's ``_compile`` is bound to ``probe.c``.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shlex
import subprocess
import tempfile
from pathlib import Path

from harness._paths import cache_dir
from harness.errors import ProbeBuildError
from harness.probe import CFLAGS
from harness.probe import _check_static, _compiler_identity, _find_compiler, _write_atomically

SOURCE = Path(__file__).with_name("iobench.c")


def _cache_key() -> str:
    digest = hashlib.sha256(SOURCE.read_bytes())
    digest.update(b"\0" + " ".join(CFLAGS).encode() + b"\0" + platform.machine().encode())
    return digest.hexdigest()[:16]


def build_iobench(cache: Path | None = None) -> Path:
    """The path of the static ``iobench`` binary, compiled on first use and cached under
    ``cache_dir()/iobench/<key>/iobench`` (key: sha256 of source, flags and arch)."""
    folder = Path(cache if cache is not None else cache_dir()) / "iobench" / _cache_key()
    binary = folder / "iobench"
    if binary.is_file():
        return binary
    compiler = _find_compiler()
    identity = _compiler_identity(compiler)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".iobench-", suffix=".tmp", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        command = [*compiler, *CFLAGS, "-o", str(tmp), str(SOURCE)]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise ProbeBuildError(f"building iobench failed: {shlex.join(command)}: {err}") from err
        if result.returncode != 0:
            raise ProbeBuildError(f"building iobench failed (exit {result.returncode}).\n$ {shlex.join(command)}\n{result.stderr.strip()}")
        _check_static(tmp)
        tmp.chmod(0o755)
        _write_atomically(folder / "compiler.txt", f"{shlex.join(compiler)}\n{identity}\n")
        os.replace(tmp, binary)
    finally:
        tmp.unlink(missing_ok=True)
    return binary
