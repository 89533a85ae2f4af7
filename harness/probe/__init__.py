"""The in-container probe: a small static C program (``probe.c``) and how to build it.

The probe is the process of most test containers. Its verbs (``report``, ``sleep``, ``pause``,
``cat``...) are documented at the top of ``probe.c``; ``report`` prints one JSON document of
everything the process sees, which :func:`parse_report` reads.

:func:`build_probe` compiles it once with the host's C compiler (``-static``) and caches the
binary under ``cache_dir()/probe/<key>/probe``, where the key hashes the source, the build
flags and the machine architecture. The compiler is not part of the key (a static binary
does not depend on which compiler made it), so a cache hit never runs the compiler; the
compiler that made a binary is recorded next to it in ``compiler.txt``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import struct
import subprocess
from pathlib import Path

from harness import atomic
from harness._paths import cache_dir
from harness.errors import ProbeBuildError

SOURCE: Path = Path(__file__).with_name("probe.c")

#: The flags every build uses (part of the cache key).
CFLAGS: tuple[str, ...] = ("-static", "-O2", "-Wall", "-Wextra")

#: The keys every report holds (``errors`` maps any of them to a message when it is null).
REPORT_KEYS: tuple[str, ...] = (
    "pid", "ppid", "hostname", "domainname", "uname",
    "uid", "euid", "suid", "gid", "egid", "sgid", "groups",
    "argv", "cwd", "env", "umask", "rlimits", "capabilities", "capabilities_raw",
    "no_new_privs", "seccomp", "oom_score_adj", "namespaces", "mounts", "cgroups", "errors",
)  # fmt: skip

_INSTALL_HINT = (
    "install a C compiler and static libc: apt-get install gcc libc6-dev (Debian/Ubuntu), "
    "dnf install gcc glibc-static (Fedora); or set HARNESS_CC to another compiler"
)
_COMPILE_TIMEOUT = 300  # seconds; a cold static build takes well under one
_MISSING_STATIC_LIBC = re.compile(r"cannot find -l(c|m|pthread)\b|cannot find \S*crt1\.o")


def source_digest() -> str:
    """The sha256 (hex) of ``probe.c``."""
    return hashlib.sha256(SOURCE.read_bytes()).hexdigest()


def _cache_key(source: Path | None = None) -> str:
    digest = hashlib.sha256((source or SOURCE).read_bytes())
    digest.update(b"\0" + " ".join(CFLAGS).encode() + b"\0" + platform.machine().encode())
    return digest.hexdigest()[:16]


def build_probe(cache: Path | None = None) -> Path:
    """The path of the compiled static probe, building it first if it is not cached.

    ``cache`` is the cache root (default :func:`harness._paths.cache_dir`). A cache hit
    costs one file read, one hash and one ``stat``. Raises :class:`ProbeBuildError` when
    there is no compiler, no static C library, or the build fails.
    """
    return build_static(SOURCE, "probe", cache)


def build_static(source: Path, name: str, cache: Path | None = None) -> Path:
    """Compile one C file into a static binary cached under ``cache/NAME/<key>/NAME`` (the key
    hashes the source, the flags and the architecture), or return the cached one."""
    folder = Path(cache if cache is not None else cache_dir()) / name / _cache_key(source)
    binary = folder / name
    if binary.is_file():
        return binary

    compiler = _find_compiler(name)
    identity = _compiler_identity(compiler)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ProbeBuildError(f"cannot create the {name} cache folder {folder}: {err}") from err

    # Build into a unique temporary name, then rename: concurrent builders (xdist workers)
    # never see a half-written binary, and the last rename wins with an identical file.
    with atomic.replacing(binary, mode=0o755) as tmp:
        _compile(compiler, source, name, tmp)
        _check_static(tmp)
        atomic.write_text(folder / "compiler.txt", f"{shlex.join(compiler)}\n{identity}\n")
    return binary


def _find_compiler(what: str = "probe") -> list[str]:
    """The compiler command: ``$HARNESS_CC``, else ``$CC``, else ``cc``, else ``gcc``."""
    for variable in ("HARNESS_CC", "CC"):
        if value := os.environ.get(variable, "").strip():
            command = shlex.split(value)
            if not shutil.which(command[0]):
                raise ProbeBuildError(
                    f"cannot build the {what}: the C compiler {command[0]!r} (from ${variable}) "
                    f"was not found; {_INSTALL_HINT}"
                )
            return command
    for name in ("cc", "gcc"):
        if shutil.which(name):
            return [name]
    raise ProbeBuildError(f"cannot build the {what}: no C compiler (cc or gcc) found; {_INSTALL_HINT}")


def _compiler_identity(compiler: list[str]) -> str:
    """The first line of ``COMPILER --version`` (recorded next to the binary)."""
    try:
        result = subprocess.run([*compiler, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ProbeBuildError(f"cannot run the C compiler {shlex.join(compiler)}: {err}") from err
    lines = result.stdout.splitlines()
    return lines[0].strip() if lines else "unknown"


def _compile(compiler: list[str], source: Path, what: str, output: Path) -> None:
    command = [*compiler, *CFLAGS, "-o", str(output), str(source)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=_COMPILE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as err:
        raise ProbeBuildError(
            f"building the {what} timed out after {_COMPILE_TIMEOUT}s: {shlex.join(command)}"
        ) from err
    except OSError as err:
        raise ProbeBuildError(f"cannot run the C compiler {shlex.join(compiler)}: {err}") from err
    if result.returncode == 0:
        return
    stderr = result.stderr.strip()
    if _MISSING_STATIC_LIBC.search(stderr):
        raise ProbeBuildError(
            f"cannot build the {what}: the static C library is missing; install libc6-dev "
            "(Debian/Ubuntu: apt-get install libc6-dev) or glibc-static (Fedora: dnf install "
            f"glibc-static).\n$ {shlex.join(command)}\n{stderr}"
        )
    raise ProbeBuildError(f"building the {what} failed (exit {result.returncode}).\n$ {shlex.join(command)}\n{stderr}")


_PT_INTERP = 3  # ELF program header type of the dynamic loader request


def has_interpreter(path: Path) -> bool:
    """Whether the ELF file at ``path`` asks for a program interpreter (is dynamically linked).

    Reads the ELF header and program headers only. Raises ValueError if it is not ELF.
    """
    with open(path, "rb") as f:
        header = f.read(64)
        if len(header) < 52 or header[:4] != b"\x7fELF":
            raise ValueError(f"{path} is not an ELF file")
        bits, order = header[4], {1: "<", 2: ">"}.get(header[5])
        if bits not in (1, 2) or order is None:
            raise ValueError(f"{path}: unknown ELF class or byte order")
        if bits == 2:
            (phoff,) = struct.unpack_from(order + "Q", header, 0x20)
            phentsize, phnum = struct.unpack_from(order + "HH", header, 0x36)
        else:
            (phoff,) = struct.unpack_from(order + "I", header, 0x1C)
            phentsize, phnum = struct.unpack_from(order + "HH", header, 0x2A)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    if len(table) < phentsize * phnum:
        raise ValueError(f"{path}: truncated ELF program headers")
    types = {struct.unpack_from(order + "I", table, i * phentsize)[0] for i in range(phnum)}
    return _PT_INTERP in types


def _check_static(binary: Path) -> None:
    try:
        dynamic = has_interpreter(binary)
    except (OSError, ValueError) as err:
        raise ProbeBuildError(f"the compiled probe cannot be read as ELF: {err}") from err
    if dynamic:
        raise ProbeBuildError(
            "the compiled probe is dynamically linked (it has a PT_INTERP header) although it "
            "was built with -static; it could not run in an empty root filesystem. Use a "
            "compiler that links statically (set HARNESS_CC), or install the static C library "
            "(libc6-dev on Debian/Ubuntu, glibc-static on Fedora)"
        )


def parse_report(text: str) -> dict:
    """The report printed by ``probe report``, as a dict.

    Raises ValueError naming the problem when ``text`` is not JSON or not a report.
    """
    try:
        report = json.loads(text)
    except json.JSONDecodeError as err:
        start = text[:200] if text.strip() else "(empty output)"
        raise ValueError(f"the probe report is not valid JSON ({err}); it starts with: {start!r}") from err
    if not isinstance(report, dict):
        raise ValueError(f"the probe report is a JSON {type(report).__name__}, not an object")
    missing = [key for key in REPORT_KEYS if key not in report]
    if missing:
        raise ValueError(f"the probe report lacks the keys {', '.join(missing)}")
    if not isinstance(report["errors"], dict):
        raise ValueError("the probe report's 'errors' is not an object")
    return report


__all__ = [
    "CFLAGS",
    "REPORT_KEYS",
    "SOURCE",
    "build_probe",
    "has_interpreter",
    "parse_report",
    "source_digest",
]
