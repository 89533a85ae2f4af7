"""Host folders with a submount, for the cases that bind them into containers.

``HostTree`` is a folder (``top``) on the host's disk holding ``file.txt``, with a tmpfs of its
own mounted at ``top/sub`` holding ``inner.txt``. The folder is world-searchable (a container in
a user namespace reaches it as an unprivileged host id) and lives outside pytest's root-only
tmp folders. Every mount made on the host is detached at teardown, the folder removed.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from harness import _linux

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 0x1000
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24


class HostTree:
    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="oci-harness-tree-"))
        os.chmod(self.base, 0o755)
        self.top = self.base / "top"
        self.sub = self.top / "sub"
        self.sub.mkdir(parents=True)
        os.chmod(self.top, 0o755)
        (self.top / "file.txt").write_text("from the host")
        self._mounted: list[str] = []
        _linux.mount("tmpfs", str(self.sub), "tmpfs", 0, "size=512k,mode=755")
        self._mounted.append(str(self.sub))
        (self.sub / "inner.txt").write_text("from the submount")

    def restrict_sub(self, flags: int) -> None:
        """Give the submount per-mount flags (a bind remount: the tmpfs itself stays as it is)."""
        _linux.mount(None, str(self.sub), None, MS_BIND | MS_REMOUNT | flags)

    def remove(self) -> None:
        for target in reversed(self._mounted):
            try:
                _linux.umount2(target, _linux.MNT_DETACH)
            except OSError as err:
                if err.errno not in (errno.EINVAL, errno.ENOENT):
                    raise
        shutil.rmtree(self.base, ignore_errors=True)
