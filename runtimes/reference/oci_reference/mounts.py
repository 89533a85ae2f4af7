"""Building the container's filesystem view inside its mount namespace.

Every destination is resolved INSIDE the rootfs with openat2(RESOLVE_IN_ROOT), creating
missing components one at a time, and mounts are made onto /proc/self/fd/<fd>: a symlink
in the rootfs can never send a mount outside it.
"""

import _stat as stat  # the C module that `stat` re-exports, without its Python layer

from oci_reference import linux
from oci_reference import oslite as os  # not `os` itself: see oslite
from oci_reference.errors import RuntimeFailure

# option -> (clear?, MS_ flag)
FLAG_OPTIONS = {
    "defaults": (False, 0),
    "ro": (False, linux.MS_RDONLY),
    "rw": (True, linux.MS_RDONLY),
    "suid": (True, linux.MS_NOSUID),
    "nosuid": (False, linux.MS_NOSUID),
    "dev": (True, linux.MS_NODEV),
    "nodev": (False, linux.MS_NODEV),
    "exec": (True, linux.MS_NOEXEC),
    "noexec": (False, linux.MS_NOEXEC),
    "sync": (False, linux.MS_SYNCHRONOUS),
    "async": (True, linux.MS_SYNCHRONOUS),
    "dirsync": (False, linux.MS_DIRSYNC),
    "remount": (False, linux.MS_REMOUNT),
    "mand": (False, linux.MS_MANDLOCK),
    "nomand": (True, linux.MS_MANDLOCK),
    "atime": (True, linux.MS_NOATIME),
    "noatime": (False, linux.MS_NOATIME),
    "diratime": (True, linux.MS_NODIRATIME),
    "nodiratime": (False, linux.MS_NODIRATIME),
    "bind": (False, linux.MS_BIND),
    "rbind": (False, linux.MS_BIND | linux.MS_REC),
    "relatime": (False, linux.MS_RELATIME),
    "norelatime": (True, linux.MS_RELATIME),
    "strictatime": (False, linux.MS_STRICTATIME),
    "nostrictatime": (True, linux.MS_STRICTATIME),
    "lazytime": (False, linux.MS_LAZYTIME),
    "nolazytime": (True, linux.MS_LAZYTIME),
    "iversion": (False, linux.MS_I_VERSION),
    "noiversion": (True, linux.MS_I_VERSION),
    "silent": (False, linux.MS_SILENT),
    "loud": (True, linux.MS_SILENT),
    "nosymfollow": (False, linux.MS_NOSYMFOLLOW),
    "symfollow": (True, linux.MS_NOSYMFOLLOW),
}
PROPAGATION_OPTIONS = {
    "private": linux.MS_PRIVATE,
    "rprivate": linux.MS_PRIVATE | linux.MS_REC,
    "shared": linux.MS_SHARED,
    "rshared": linux.MS_SHARED | linux.MS_REC,
    "slave": linux.MS_SLAVE,
    "rslave": linux.MS_SLAVE | linux.MS_REC,
    "unbindable": linux.MS_UNBINDABLE,
    "runbindable": linux.MS_UNBINDABLE | linux.MS_REC,
}
# recursive mount attributes (mount_setattr): option -> (clear?, MOUNT_ATTR_ flag)
RECURSIVE_OPTIONS = {
    "rro": (False, linux.MOUNT_ATTR_RDONLY),
    "rrw": (True, linux.MOUNT_ATTR_RDONLY),
    "rnosuid": (False, linux.MOUNT_ATTR_NOSUID),
    "rsuid": (True, linux.MOUNT_ATTR_NOSUID),
    "rnodev": (False, linux.MOUNT_ATTR_NODEV),
    "rdev": (True, linux.MOUNT_ATTR_NODEV),
    "rnoexec": (False, linux.MOUNT_ATTR_NOEXEC),
    "rexec": (True, linux.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, linux.MOUNT_ATTR_NODIRATIME),
    "rdiratime": (True, linux.MOUNT_ATTR_NODIRATIME),
    "rrelatime": (None, linux.MOUNT_ATTR_RELATIME),
    "rnorelatime": (None, linux.MOUNT_ATTR_NOATIME),  # treated like rnoatime/rstrictatime below
    "rnoatime": (None, linux.MOUNT_ATTR_NOATIME),
    "ratime": (None, linux.MOUNT_ATTR_STRICTATIME),
    "rstrictatime": (None, linux.MOUNT_ATTR_STRICTATIME),
    "rnostrictatime": (None, linux.MOUNT_ATTR_RELATIME),
    "rnosymfollow": (False, linux.MOUNT_ATTR_NOSYMFOLLOW),
    "rsymfollow": (True, linux.MOUNT_ATTR_NOSYMFOLLOW),
}
KNOWN_OPTIONS = sorted(
    set(FLAG_OPTIONS) | set(PROPAGATION_OPTIONS) | set(RECURSIVE_OPTIONS) | {"tmpcopyup", "idmap", "ridmap"}
)

DEFAULT_DEVICES = (
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
)


def parse_options(options):
    """Split mount options into (flags, propagation list, data string, attr_set, attr_clr)."""
    flags = 0
    props = []
    data = []
    aset = aclr = 0
    for o in options:
        if o in FLAG_OPTIONS:
            clear, f = FLAG_OPTIONS[o]
            if clear:
                flags &= ~f
            else:
                flags |= f
        elif o in PROPAGATION_OPTIONS:
            props.append(PROPAGATION_OPTIONS[o])
        elif o in RECURSIVE_OPTIONS:
            clear, f = RECURSIVE_OPTIONS[o]
            if clear is None:  # atime family: clear the whole field, then set
                aclr |= linux.MOUNT_ATTR__ATIME
                aset = (aset & ~linux.MOUNT_ATTR__ATIME) | f
            elif clear:
                aclr |= f
                aset &= ~f
            else:
                aset |= f
                aclr &= ~f
        else:
            data.append(o)
    return flags, props, ",".join(data), aset, aclr


def fdpath(fd):
    return f"/proc/self/fd/{fd}"


_RESOLVE = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS


def open_in_root(rootfd, path):
    rel = path.lstrip("/") or "."
    return linux.openat2(rootfd, rel, os.O_PATH, _RESOLVE)


def ensure_path(rootfd, path, is_file=False, _depth=0):
    """Open (O_PATH) `path` inside the root, creating what is missing; return the fd."""
    try:
        return open_in_root(rootfd, path)
    except FileNotFoundError:
        pass
    if _depth > 40:
        raise RuntimeFailure(f"too many levels of symbolic links creating {path}")
    parts = [p for p in path.split("/") if p and p != "."]
    # the usual case first: only the last component is missing (one open, not one per level)
    try:
        pfd = open_in_root(rootfd, "/".join(parts[:-1]))
    except FileNotFoundError:
        pfd = -1
    if pfd >= 0:
        try:
            _create_component(rootfd, pfd, parts, len(parts) - 1, is_file, _depth)
        finally:
            os.close(pfd)
        return open_in_root(rootfd, path)
    for i in range(len(parts)):
        sub = "/".join(parts[: i + 1])
        try:
            os.close(open_in_root(rootfd, sub))
            continue
        except FileNotFoundError:
            pass
        pfd = open_in_root(rootfd, "/".join(parts[:i]))
        try:
            _create_component(rootfd, pfd, parts, i, is_file, _depth)
        finally:
            os.close(pfd)
    return open_in_root(rootfd, path)


def _create_component(rootfd, pfd, parts, i, is_file, _depth):
    """Create parts[i] in the folder open at `pfd` (parts[:i] inside the root): a folder, or
    with `is_file` an empty file if it is the last part. A dangling symlink in the way gets
    its target created instead, inside the root."""
    last = i == len(parts) - 1
    try:
        if last and is_file:
            os.close(
                os.open(
                    parts[i],
                    os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW,
                    0o644,
                    dir_fd=pfd,
                )
            )
        else:
            os.mkdir(parts[i], 0o755, dir_fd=pfd)
    except FileExistsError:
        # a dangling symlink: create its target, inside the root
        target = os.readlink(parts[i], dir_fd=pfd)
        newpath = target if target.startswith("/") else "/".join([*parts[:i], target])
        rest = parts[i + 1 :]
        full = newpath.rstrip("/") + ("/" + "/".join(rest) if rest else "")
        os.close(ensure_path(rootfd, full, is_file, _depth + 1))


def _statvfs_locked(path):
    """MS_ flags of the mount at `path` that a bind remount must keep."""
    try:
        f = os.statvfs(path).f_flag
    except OSError:
        return 0
    out = 0
    if f & linux.ST_NOSUID:
        out |= linux.MS_NOSUID
    if f & linux.ST_NODEV:
        out |= linux.MS_NODEV
    if f & linux.ST_NOEXEC:
        out |= linux.MS_NOEXEC
    if f & linux.ST_NOATIME:
        out |= linux.MS_NOATIME
    if f & linux.ST_NODIRATIME:
        out |= linux.MS_NODIRATIME
    if f & linux.ST_RELATIME:
        out |= linux.MS_RELATIME
    return out


def remount_bind(target, flags, keep_locked=True):
    want = flags & ~(linux.MS_BIND | linux.MS_REC | linux.MS_REMOUNT | linux.MS_PROPAGATION)
    try:
        linux.mount(None, target, None, linux.MS_BIND | linux.MS_REMOUNT | want)
    except PermissionError:
        if not keep_locked:
            raise
        linux.mount(None, target, None, linux.MS_BIND | linux.MS_REMOUNT | want | _statvfs_locked(target))


class RootfsBuilder:
    """Mounts, devices and pivot_root for one container; runs in the container init."""

    def __init__(self, cfg, userns, cgroup_sources):
        self.cfg = cfg
        self.userns = userns
        # () -> [(name, host dir, [links])] for a cgroup mount; called only there, since the
        # container's cgroups may still be in the making while the other mounts are done
        self.cgroup_sources = cgroup_sources
        self.rootfs = cfg.root_path
        self.rootfd = -1
        # Without a mount namespace of its own the container shares the runtime's
        # (config-linux.md#namespaces: an unlisted type is inherited): nothing is mounted, the
        # process is jailed in the rootfs with chroot, and config.py refuses what needs mounts.
        self.own_mount_ns = cfg.ns("mount")[0]

    # --- before pivot_root ------------------------------------------------------------
    def prepare(self):
        cfg = self.cfg
        if not self.own_mount_ns:
            self.rootfd = os.open(self.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            self._default_devices()
            self._devices()
            return
        # like runc: rslave unless private is asked for, so that host mount events still
        # reach the container and a bind of a shared host mount can be its slave; the
        # requested rootfsPropagation is applied to "/" after pivot_root
        if cfg.rootfs_propagation in ("private", "rprivate"):
            linux.mount(None, "/", None, linux.MS_PRIVATE | linux.MS_REC)
        else:
            linux.mount(None, "/", None, linux.MS_SLAVE | linux.MS_REC)
        # make the rootfs a mount point of its own
        linux.mount(self.rootfs, self.rootfs, None, linux.MS_BIND | linux.MS_REC)
        self.rootfd = os.open(self.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        dev_bound = False
        devpts = False
        for i, m in enumerate(cfg.mounts):
            try:
                self._mount(m)
            except OSError as e:
                raise RuntimeFailure(f"mounts[{i}] ({m['destination']}): {e.strerror or e}") from None
            if m["destination"] == "/dev" and m["bind"]:
                dev_bound = True
            if m["destination"] == "/dev/pts" and m["type"] == "devpts":
                devpts = True
        if not dev_bound:
            self._default_devices()
        self._devices()
        self._dev_symlinks(devpts)

    def _mount(self, m):
        flags, props, data, aset, aclr = parse_options(m["options"])
        dest = m["destination"]
        typ = m["type"]
        if m["bind"]:
            src = m["source"]
            try:
                st = os.stat(src)
            except OSError as e:
                raise RuntimeFailure(f"bind source {src}: {e.strerror}") from None
            fd = ensure_path(self.rootfd, dest, is_file=not stat.S_ISDIR(st.st_mode))
            try:
                if m.get("idmap_fd") is not None:  # id-mapped by P1 (idmap.py): attach it
                    linux.move_mount(m["idmap_fd"], fd)
                    os.close(m.pop("idmap_fd"))
                else:
                    linux.mount(src, fdpath(fd), None, linux.MS_BIND | (flags & linux.MS_REC))
            finally:
                os.close(fd)
            fd = open_in_root(self.rootfd, dest)
            try:
                if flags & ~(linux.MS_BIND | linux.MS_REC):
                    remount_bind(fdpath(fd), flags)
                self._finish(fd, props, aset, aclr)
            finally:
                os.close(fd)
            return
        fd = ensure_path(self.rootfd, dest)
        try:
            if typ == "cgroup" or typ == "cgroup2":
                self._mount_cgroup(fd, dest, flags)
            elif m.get("copyup"):
                self._mount_copyup(fd, dest, m["source"] or typ, typ, flags, data)
            else:
                src = m["source"] or typ
                try:
                    linux.mount(src, fdpath(fd), typ, flags, data or None)
                except PermissionError:
                    if typ != "sysfs":
                        raise
                    # sysfs needs a network namespace we own; fall back to the host's /sys
                    linux.mount("/sys", fdpath(fd), None, linux.MS_BIND | linux.MS_REC)
                    os.close(fd)
                    fd = open_in_root(self.rootfd, dest)
                    remount_bind(fdpath(fd), flags | linux.MS_RDONLY)
        finally:
            os.close(fd)
        if props or aset or aclr:
            fd = open_in_root(self.rootfd, dest)
            try:
                self._finish(fd, props, aset, aclr)
            finally:
                os.close(fd)

    def _mount_copyup(self, fd, dest, src, typ, flags, data):
        """tmpcopyup: mount the tmpfs, then copy in what the rootfs held at `dest`."""
        old = os.open(fdpath(fd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            ro = flags & linux.MS_RDONLY
            linux.mount(src, fdpath(fd), typ, flags & ~linux.MS_RDONLY, data or None)
            nfd = open_in_root(self.rootfd, dest)
            try:
                new = os.open(fdpath(nfd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    _copy_tree(old, new)
                finally:
                    os.close(new)
                if ro:
                    linux.mount(None, fdpath(nfd), None, linux.MS_REMOUNT | flags, data or None)
            finally:
                os.close(nfd)
        finally:
            os.close(old)

    @staticmethod
    def _finish(fd, props, aset, aclr):
        for p in props:
            linux.mount(None, fdpath(fd), None, p)
        if aset or aclr:
            linux.mount_setattr(fd, aset, aclr, recursive=True)

    def _mount_cgroup(self, fd, dest, flags):
        ro = flags & linux.MS_RDONLY
        base = flags & ~(linux.MS_RDONLY | linux.MS_BIND | linux.MS_REC | linux.MS_REMOUNT)
        srcs = self.cgroup_sources()
        if len(srcs) == 1 and srcs[0][0] == "":
            # pure cgroup v2: the container's own group, bound onto the destination
            linux.mount(srcs[0][1], fdpath(fd), None, linux.MS_BIND | linux.MS_REC)
            nfd = open_in_root(self.rootfd, dest)
            try:
                remount_bind(fdpath(nfd), base | ro)
            finally:
                os.close(nfd)
            return
        # cgroup v1 (or hybrid): a tmpfs holding one bind mount per hierarchy
        linux.mount("cgroup", fdpath(fd), "tmpfs", base, "mode=755")
        for name, src, links in srcs:
            sub = dest.rstrip("/") + "/" + name
            sfd = ensure_path(self.rootfd, sub)
            try:
                linux.mount(src, fdpath(sfd), None, linux.MS_BIND | linux.MS_REC)
            finally:
                os.close(sfd)
            sfd = open_in_root(self.rootfd, sub)
            try:
                remount_bind(fdpath(sfd), base | linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC | ro)
            finally:
                os.close(sfd)
            if links:
                dfd = open_in_root(self.rootfd, dest)
                try:
                    for ln in links:
                        try:
                            os.symlink(name, ln, dir_fd=dfd)
                        except FileExistsError:
                            pass
                finally:
                    os.close(dfd)
        if ro:
            nfd = open_in_root(self.rootfd, dest)
            try:
                linux.mount(None, fdpath(nfd), None, linux.MS_REMOUNT | base | linux.MS_RDONLY, "mode=755")
            finally:
                os.close(nfd)

    def _make_node(self, path, kind, major, minor, mode, uid, gid, strict=False):
        """Create a device node; an existing file that is not this device is replaced,
        or with `strict` (linux.devices) an error (config-linux.md "Devices")."""
        parent, name = os.path.split(path)
        pfd = ensure_path(self.rootfd, parent)
        try:
            dev = os.makedev(major, minor)
            if strict:
                try:
                    st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
                except FileNotFoundError:
                    pass
                else:
                    if not (stat.S_IFMT(st.st_mode) == kind and (kind == stat.S_IFIFO or st.st_rdev == dev)):
                        raise RuntimeFailure(f"linux.devices: {path} already exists and is not the requested device")
            if self.userns:
                # no mknod in a user namespace: bind the host's node instead
                try:
                    os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644, dir_fd=pfd))
                except FileExistsError:
                    pass
                fd = linux.openat2(pfd, name, os.O_PATH, linux.RESOLVE_BENEATH | linux.RESOLVE_NO_SYMLINKS)
                try:
                    linux.mount(path, fdpath(fd), None, linux.MS_BIND)
                finally:
                    os.close(fd)
                return
            try:
                os.mknod(name, kind | mode, dev, dir_fd=pfd)
            except FileExistsError:
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
                if not (stat.S_IFMT(st.st_mode) == kind and st.st_rdev == dev):
                    os.unlink(name, dir_fd=pfd)
                    os.mknod(name, kind | mode, dev, dir_fd=pfd)
            os.chown(name, uid, gid, dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(pfd)

    def _default_devices(self):
        overridden = {d["path"] for d in self.cfg.devices}
        for path, major, minor in DEFAULT_DEVICES:
            if path in overridden:
                continue
            try:
                self._make_node(path, stat.S_IFCHR, major, minor, 0o666, 0, 0)
            except OSError as e:
                raise RuntimeFailure(f"creating device {path}: {e.strerror or e}") from None

    def _devices(self):
        kinds = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
        for d in self.cfg.devices:
            try:
                self._make_node(
                    d["path"], kinds[d["type"]], d["major"], d["minor"], d["fileMode"], d["uid"], d["gid"], strict=True
                )
            except OSError as e:
                raise RuntimeFailure(f"creating device {d['path']}: {e.strerror or e}") from None

    def _dev_symlinks(self, devpts):
        links = [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ]
        if os.path.exists("/proc/kcore"):
            links.append(("core", "/proc/kcore"))
        dfd = ensure_path(self.rootfd, "/dev")
        try:
            for name, target in links:
                try:
                    os.symlink(target, name, dir_fd=dfd)
                except FileExistsError:
                    pass
            if devpts:
                try:
                    os.unlink("ptmx", dir_fd=dfd)
                except FileNotFoundError:
                    pass
                os.symlink("pts/ptmx", "ptmx", dir_fd=dfd)
        finally:
            os.close(dfd)

    def pivot(self):
        if self.rootfd >= 0:
            os.close(self.rootfd)
            self.rootfd = -1
        os.chdir(self.rootfs)
        if not self.own_mount_ns:
            os.chroot(".")
            os.chdir("/")
            return
        linux.pivot_root(".", ".")
        # the old root is now stacked on "."; prepare() made every mount of this namespace
        # a slave or private, so detaching it cannot reach the host.  (A recursive MS_SLAVE
        # on "." here would act on the new root and demote the container's shared mounts.)
        linux.umount2(".", linux.MNT_DETACH)
        os.chdir("/")

    # --- after pivot_root -------------------------------------------------------------
    def finish(self):
        cfg = self.cfg
        if not self.own_mount_ns:
            return
        for p in cfg.masked_paths:
            self._mask(p)
        for p in cfg.readonly_paths:
            self._readonly(p)
        prop = cfg.rootfs_propagation
        if prop in ("shared", "rshared", "unbindable", "runbindable", "private"):
            linux.mount(None, "/", None, PROPAGATION_OPTIONS[prop])
        if cfg.root_readonly:
            remount_bind("/", linux.MS_RDONLY | _statvfs_locked("/"))

    @staticmethod
    def _mask(path):
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as e:
            raise RuntimeFailure(f"masking {path}: {e.strerror}") from None
        try:
            if stat.S_ISDIR(st.st_mode):
                linux.mount("tmpfs", path, "tmpfs", linux.MS_RDONLY)
            else:
                linux.mount("/dev/null", path, None, linux.MS_BIND)
        except OSError as e:
            raise RuntimeFailure(f"masking {path}: {e.strerror}") from None

    @staticmethod
    def _readonly(path):
        if not os.path.exists(path):
            return
        try:
            linux.mount(path, path, None, linux.MS_BIND | linux.MS_REC)
            remount_bind(path, linux.MS_RDONLY | _statvfs_locked(path))
        except OSError as e:
            raise RuntimeFailure(f"making {path} read-only: {e.strerror}") from None


def _copy_tree(src, dst):
    """Copy the directory open at fd `src` into the one at fd `dst` (owners, modes, links)."""
    _DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    with os.scandir(src) as it:
        entries = list(it)
    for e in entries:
        name = e.name
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        mode = stat.S_IMODE(st.st_mode)
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFDIR:
            os.mkdir(name, 0o700, dir_fd=dst)
            s2 = os.open(name, _DIR, dir_fd=src)
            try:
                d2 = os.open(name, _DIR, dir_fd=dst)
                try:
                    _copy_tree(s2, d2)
                    os.fchown(d2, st.st_uid, st.st_gid)
                    os.fchmod(d2, mode)
                finally:
                    os.close(d2)
            finally:
                os.close(s2)
        elif kind == stat.S_IFREG:
            sf = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
            try:
                df = os.open(
                    name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dst
                )
                try:
                    left = st.st_size
                    while left > 0:
                        n = os.sendfile(df, sf, None, min(left, 1 << 30))
                        if n <= 0:
                            break
                        left -= n
                    os.fchown(df, st.st_uid, st.st_gid)
                    os.fchmod(df, mode)
                finally:
                    os.close(df)
            finally:
                os.close(sf)
        elif kind == stat.S_IFLNK:
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
        else:
            os.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            os.chmod(name, mode, dir_fd=dst)
