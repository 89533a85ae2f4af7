"""Host folders with a submount, for the cases that bind them into containers.

``HostTree`` is a folder (``top``, bound onto itself, so it is a mount of its own) on the
host's disk holding ``file.txt``, with a tmpfs mounted at ``top/sub`` holding ``inner.txt``.
Both start as plain ``rw,relatime`` mounts; :meth:`HostTree.restrict` gives both per-mount flags
(nosuid, noatime...) that a recursive option in the container must then clear. The folder is world-searchable (a container in
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
from harness._linux import MS_BIND, MS_REMOUNT


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
        _linux.mount(str(self.top), str(self.top), None, MS_BIND)
        self._mounted.append(str(self.top))
        _linux.mount("tmpfs", str(self.sub), "tmpfs", 0, "size=4m,mode=755")
        self._mounted.append(str(self.sub))
        (self.sub / "inner.txt").write_text("from the submount")
        self.restrict(0)

    def restrict(self, flags: int) -> None:
        """Set the per-mount flags of ``top`` and ``sub`` to ``flags`` (a bind remount: the
        filesystems themselves stay as they are); 0 is plain rw,relatime."""
        for target in (self.top, self.sub):
            _linux.mount(None, str(target), None, MS_BIND | MS_REMOUNT | flags)

    def remove(self) -> None:
        for target in reversed(self._mounted):
            try:
                _linux.umount2(target, _linux.MNT_DETACH)
            except OSError as err:
                if err.errno not in (errno.EINVAL, errno.ENOENT):
                    raise
        shutil.rmtree(self.base, ignore_errors=True)
