"""Id-mapped mounts (config.md "POSIX-platform Mounts" uidMappings/gidMappings, the idmap and
ridmap options), made with mount_setattr(MOUNT_ATTR_IDMAP) as the spec recommends.

Giving a mount an idmapping needs privilege over the filesystem's own user namespace (the
host's), which the container init no longer has once it is in a user namespace of its own.
So P1, still in the runtime's namespaces, clones each source into a detached mount
(open_tree), applies the mapping (of the mount itself only for idmap, of every mount below it
too for ridmap), and keeps the fd; the init later attaches it at the destination
(move_mount). The mapping is carried by a user namespace: a short-lived child unshares one,
the caller writes its uid_map and gid_map, and its /proc/PID/ns/user fd is the mapping.
"""

from oci_reference import linux
from oci_reference import oslite as os  # not `os` itself: see oslite
from oci_reference.errors import RuntimeFailure


def _fmt(mappings):
    return "".join(f"{c} {h} {s}\n" for c, h, s in mappings)


def userns_with(uid_map, gid_map):
    """An fd of a new user namespace with these mappings (no process left in it)."""
    r, w = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.close(w2)
            linux.unshare(linux.CLONE_NEWUSER)
            os.write(w, b"1")
            os.read(r2, 1)  # until the maps are written and the namespace is open
        finally:
            os._exit(0)
    os.close(w)
    os.close(r2)
    try:
        if os.read(r, 1) != b"1":
            raise RuntimeFailure("id-mapped mount: cannot make a user namespace for the mapping")
        try:
            with open(f"/proc/{pid}/uid_map", "w") as f:
                f.write(_fmt(uid_map))
            with open(f"/proc/{pid}/gid_map", "w") as f:
                f.write(_fmt(gid_map))
        except OSError as e:
            raise RuntimeFailure(f"id-mapped mount: cannot write the mapping: {e.strerror}") from None
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(r)
        os.close(w2)
        os.waitpid(pid, 0)


def prepare(cfg):
    """Detached, id-mapped copies of the sources of the mounts that ask for it: sets
    m["idmap_fd"] on each. Runs in P1 before it enters any namespace of the container."""
    for i, m in enumerate(cfg.mounts):
        im = m.get("idmap")
        if im is None:
            continue
        where = f"mounts[{i}] ({m['destination']})"
        if im.get("userns_path"):
            try:
                ns = os.open(im["userns_path"], os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise RuntimeFailure(f"{where}: cannot open user namespace {im['userns_path']}: {e.strerror}") from None
        else:
            ns = userns_with(im["uid"], im["gid"])
        try:
            rec_bind = bool(linux.MS_REC & _bind_flags(m["options"]))
            try:
                fd = linux.open_tree(m["source"], rec_bind)
            except OSError as e:
                raise RuntimeFailure(f"{where}: cannot clone the bind source {m['source']}: {e.strerror}") from None
            try:
                linux.mount_setattr(fd, linux.MOUNT_ATTR_IDMAP, 0, recursive=im["recursive"], userns_fd=ns)
            except OSError as e:
                os.close(fd)
                raise RuntimeFailure(
                    f"{where}: cannot id-map the mount of {m['source']}: {e.strerror} "
                    "(the kernel needs 5.12 or later and a filesystem that supports id-mapped mounts)"
                ) from None
            m["idmap_fd"] = fd
        finally:
            os.close(ns)


def _bind_flags(options):
    return linux.MS_BIND | linux.MS_REC if "rbind" in options else linux.MS_BIND
