"""Files written atomically: a reader sees the old file or the whole new one, never half of it.

Every file the harness writes for someone else to read (a bundle's config.json, result files,
cached downloads and builds, an image layout's index and blobs) is written to a temporary file
in the destination's own folder (so the rename stays on one file system) and renamed over the
destination with ``os.replace``. A failure midway removes the temporary file and leaves the
destination as it was. Concurrent writers (xdist workers building the same probe) are fine:
the last rename wins, and each one put a whole file there.

A file that does not exist yet and that nobody reads before its writer is done (a new
bundle's config.json) needs no temporary file: :func:`write_new` creates it exclusively and
writes it in place, removing it again on a failure.

Folders made the same way (unpack into a temporary folder, then rename it) are left to their
callers: whether a folder already in place may be replaced depends on what it holds.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Files the harness writes are readable by all, as a plain ``open(..., "w")`` under umask 022
#: would make them; mkstemp would leave 0600.
MODE = 0o644


@contextmanager
def temporary(folder: Path, name: str, suffix: str = ".tmp") -> Iterator[Path]:
    """A fresh, empty file in ``folder`` (named after ``name``, hidden), removed when the block
    ends unless it was moved away with :func:`install` first."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


def install(tmp: Path, path: Path, mode: int = MODE) -> None:
    """Give ``tmp`` its mode and rename it over ``path`` in one step."""
    os.chmod(tmp, mode)
    os.replace(tmp, path)


@contextmanager
def replacing(path: Path, *, mode: int = MODE, suffix: str = ".tmp", parents: bool = False) -> Iterator[Path]:
    """``with replacing(path) as tmp:`` write ``tmp`` (or have a compiler or a download write
    it); when the block ends without an error ``tmp`` replaces ``path`` with ``mode``. On an
    error (or Ctrl-C) ``tmp`` is removed and ``path`` is untouched."""
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    with temporary(path.parent, path.name, suffix) as tmp:
        yield tmp
        install(tmp, path, mode)


def write_bytes(path: Path, data: bytes, *, mode: int = MODE, parents: bool = False) -> None:
    with replacing(path, mode=mode, parents=parents) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str, *, mode: int = MODE, parents: bool = False) -> None:
    """``text`` as UTF-8 at ``path``, atomically."""
    write_bytes(path, text.encode("utf-8"), mode=mode, parents=parents)


def write_new(path: Path, data: bytes, *, mode: int = MODE) -> None:
    """``data`` in a new file at ``path``, written in place: an existing file (or symlink) there
    is refused with ``FileExistsError``; on a failure midway the file is removed again."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        Path(path).unlink(missing_ok=True)
        raise
    os.close(fd)
