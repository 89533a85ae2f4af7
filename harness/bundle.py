"""OCI bundles: a folder holding config.json and a root filesystem (runtime-spec bundle.md).

:func:`create_bundle` makes one from a rootfs source (see :mod:`harness.rootfs`) or from an OCI
image (``image=LAYOUT[:TAG]``), installs the probe at ``/probe`` and writes a validated config.
It only ever writes inside the folder it was given, refuses a folder that already holds
something, and removes what it made (unmounting first) if it fails.

Image bundles come in two modes:

- ``raw``: every layer is applied, in order, into ``DIR/rootfs`` (a flattened copy).
- ``overlay``: the layers are unpacked once into the layer store (:mod:`harness.image.store`) and
  mounted as overlayfs lowerdirs at ``DIR/rootfs``, with a fresh ``DIR/overlay/upper`` and
  ``DIR/overlay/work`` per bundle. The probe is one more stored lowerdir on top (a one-file
  layer keyed by the probe's sha256), so nothing is copied per bundle. :func:`remove_bundle`
  unmounts and removes such a bundle.

The image config fills config.json as an engine does: ``Entrypoint`` + ``Cmd`` (``args`` replace
``Cmd``), ``Env`` (with a default ``PATH`` if it has none), ``WorkingDir``, ``User`` (numeric
``uid[:gid]`` or names resolved from the image's ``/etc/passwd`` and ``/etc/group``, with the
user's supplementary groups) and ``Labels`` as annotations.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import spec
from .errors import BundleError, HarnessError

if TYPE_CHECKING:
    from .image import Image, LayerStore

#: Image bundle modes.
MODES = ("raw", "overlay")
#: The file that marks a bundle made from an image (mode, image digest, layer folders).
MARKER = ".harness-bundle.json"

#: Where the probe lives inside every rootfs the harness makes.
PROBE_PATH = "/probe"


@dataclass(frozen=True)
class Bundle:
    """A bundle folder on disk."""

    path: Path

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    def config(self) -> dict[str, Any]:
        return spec.load(self.config_path)

    def write_config(self, config: dict[str, Any]) -> None:
        spec.check(config, source=str(self.config_path))
        spec.dump(config, self.config_path)

    def edit(self, change: Callable[[dict[str, Any]], None], *, validate: bool = True) -> dict[str, Any]:
        """Apply ``change`` to the config in place, validate and write it; returns the new config.

        ``validate=False`` writes a config the spec's rules refuse, for cases where the runtime
        must be the one to refuse it.
        """
        config = self.config()
        change(config)
        if validate:
            self.write_config(config)
        else:
            spec.dump(config, self.config_path)
        return config

    @property
    def rootfs(self) -> Path:
        root = self.config().get("root", {}).get("path", "rootfs")
        return (self.path / root) if not os.path.isabs(root) else Path(root)


def create_bundle(
    directory: Path,
    *,
    rootfs: str = "probe",
    rootfs_tar: Path | None = None,
    hostname: str | None = None,
    args: list[str] | None = None,
    readonly: bool = True,
    install_probe: bool = True,
    probe_binary: Path | SharedProbe | None = None,
    image: str | Path | Image | None = None,
    mode: str = "raw",
    store: LayerStore | None = None,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> Bundle:
    """Make a bundle in ``directory`` (which must not exist, or be empty).

    ``rootfs`` is ``probe`` (the probe alone), ``alpine`` (the Alpine minirootfs; ``rootfs_tar``
    gives a local copy), or the path of a folder or tarball. ``args`` default to the probe's
    ``hostname`` verb for a probe rootfs and to ``sh`` otherwise. ``process.terminal`` is false.

    ``image`` (``LAYOUT[:TAG]``, or an :class:`~harness.image.Image`) makes the root filesystem
    from an OCI image instead, in ``mode`` ``raw`` or ``overlay`` (``store``: the layer store,
    default ``cache_dir()/"layers"``); the image config fills the process (see the module doc).
    Remove an overlay bundle with :func:`remove_bundle`. ``edit(config)`` may change the config
    in place before it is validated and written (as :meth:`Bundle.edit` would, in one write).
    """
    from . import rootfs as _rootfs

    if image is not None:
        if rootfs != "probe" or rootfs_tar is not None:
            raise BundleError("a bundle's root filesystem comes from --rootfs or from --image, not both")
        return _create_image_bundle(
            Path(directory),
            image,
            mode=mode,
            store=store,
            hostname=hostname,
            args=args,
            readonly=readonly,
            install_probe=install_probe,
            probe_binary=probe_binary,
            edit=edit,
        )
    if mode != "raw":
        raise BundleError(f"--mode {mode} goes with --image; a --rootfs bundle is always a raw copy")

    directory = Path(directory)
    made_dir = not directory.exists()
    if not made_dir:
        if not directory.is_dir():
            raise BundleError(f"{directory} exists and is not a folder; choose another bundle path")
        if any(directory.iterdir()):
            raise BundleError(
                f"{directory} is not empty; a bundle needs an empty or new folder (remove it or choose another)"
            )
    made: list[Path] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        root = directory / "rootfs"
        root.mkdir()
        made.append(root)
        _rootfs.populate(rootfs, root, rootfs_tar=rootfs_tar)
        if install_probe:
            _install_probe(root, probe_binary)
        config = spec.default_config()
        process = config["process"]
        process["terminal"] = False
        if args:
            process["args"] = list(args)
        elif rootfs == "probe":
            process["args"] = [PROBE_PATH, "hostname"]
        return _write_new_config(directory, config, made, readonly=readonly, hostname=hostname, edit=edit)
    except BaseException:
        _undo(directory, made_dir, made)
        raise


def _write_new_config(
    directory: Path,
    config: dict[str, Any],
    made: list[Path],
    *,
    readonly: bool,
    hostname: str | None,
    edit: Callable[[dict[str, Any]], None] | None,
) -> Bundle:
    """The tail both kinds of bundle share: root.readonly, hostname, the caller's ``edit``, then
    one validated write of config.json (a bundle's config is written once, not once before and
    once after the edit)."""
    config["root"]["readonly"] = readonly
    config["hostname"] = hostname if hostname is not None else "oci-harness"
    if edit is not None:
        edit(config)
    bundle = Bundle(directory)
    spec.check(config, source=str(bundle.config_path))
    made.append(bundle.config_path)
    spec.dump(config, bundle.config_path, new=True)
    return bundle


def _check_new_folder(directory: Path) -> bool:
    """Whether ``directory`` must be made (it does not exist); refuses a non-empty folder."""
    if not directory.exists():
        return True
    if not directory.is_dir():
        raise BundleError(f"{directory} exists and is not a folder; choose another bundle path")
    if any(directory.iterdir()):
        raise BundleError(
            f"{directory} is not empty; a bundle needs an empty or new folder (remove it or choose another)"
        )
    return False


def _create_image_bundle(
    directory: Path,
    image: str | Path | Image,
    *,
    mode: str,
    store: LayerStore | None,
    hostname: str | None,
    args: list[str] | None,
    readonly: bool,
    install_probe: bool,
    probe_binary: Path | SharedProbe | None,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> Bundle:
    from .image import RAW, Image, LayerStore, Layout, mount_overlay, parse_reference, unpack_layer

    if mode not in MODES:
        raise BundleError(f"unknown bundle mode {mode!r}: use raw or overlay")
    if isinstance(image, Image):
        img = image
    else:
        path, tag = parse_reference(str(image))
        img = Layout.open(path).resolve(tag)
    made_dir = _check_new_folder(directory)
    store = store or (LayerStore() if mode == "overlay" else None)
    stored = store.ensure(img) if store is not None and mode == "overlay" else []
    made: list[Path] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        root = directory / "rootfs"
        root.mkdir()
        made.append(root)
        marker: dict[str, Any] = {"mode": mode, "image": img.digest, "ref": img.ref}
        if mode == "overlay":
            upper_base = directory / "overlay"
            upper_base.mkdir()
            made.append(upper_base)
            upper, work = upper_base / "upper", upper_base / "work"
            upper.mkdir()
            work.mkdir()
            lowers = [s.path for s in reversed(stored)]
            top = os.stat(lowers[0]) if lowers else None
            if top is not None:
                os.chown(upper, top.st_uid, top.st_gid)
                os.chmod(upper, stat.S_IMODE(top.st_mode))
            if install_probe:
                # The probe is a stored one-file layer on top, shared by every overlay bundle
                # (nothing is copied into the upper folder).
                from .probe import build_probe

                assert store is not None
                binary = probe_binary.binary if isinstance(probe_binary, SharedProbe) else probe_binary
                probe_layer = store.file_layer(Path(binary or build_probe()), PROBE_PATH.lstrip("/"))
                lowers.insert(0, probe_layer)
                install_probe = False
            marker["layers"] = [str(p) for p in lowers]
            (directory / MARKER).write_text(json.dumps(marker))
            made.append(directory / MARKER)
            if lowers:
                mount_overlay(root, lowers, upper, work)
            else:  # an image without layers: the upper folder alone, bind-mounted
                from . import _linux

                _linux.mount(str(upper), str(root), None, _linux.MS_BIND)
        else:
            (directory / MARKER).write_text(json.dumps(marker))
            made.append(directory / MARKER)
            for desc, diff_id in zip(img.layers, img.diff_ids, strict=False):
                unpack_layer(img.layout, desc, diff_id, root, form=RAW)
        if install_probe:
            _install_probe(root, probe_binary)
        config = spec.default_config()
        config["process"]["terminal"] = False
        _apply_image_config(config, img.config.get("config") or {}, root, args, img)
        return _write_new_config(directory, config, made, readonly=readonly, hostname=hostname, edit=edit)
    except BaseException:
        _undo(directory, made_dir, made)
        raise


def _undo(directory: Path, made_dir: bool, made: list[Path]) -> None:
    """Remove what a failed bundle creation made: the folder if it made it, else the entries it
    added (never anything that was there before); mounts first."""
    _unmount_all(directory)
    if made_dir:
        shutil.rmtree(directory, ignore_errors=True)
        return
    for path in made:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _unmount_all(directory: Path) -> None:
    from .image import mounts_under, unmount

    if not directory.exists():
        return
    for point in mounts_under(directory):
        unmount(point)
    left = mounts_under(directory)
    if left:
        raise BundleError(
            f"cannot unmount {', '.join(map(str, left))}; unmount it by hand (umount -l) before removing {directory}"
        )


def remove_bundle(directory: Path) -> None:
    """Unmount everything mounted at or below ``directory`` and remove the bundle folder.

    Refuses a folder that is not a bundle (no config.json and no image-bundle marker), so a
    mistyped path never loses data. A missing folder is not an error."""
    directory = Path(directory)
    if not directory.exists():
        return
    if not directory.is_dir() or directory.is_symlink():
        raise BundleError(f"{directory} is not a bundle folder")
    if not ((directory / "config.json").exists() or (directory / MARKER).exists()):
        raise BundleError(f"{directory} holds no config.json; it does not look like a bundle, so it is not removed")
    _unmount_all(directory)
    try:
        shutil.rmtree(directory)
    except OSError as err:
        raise BundleError(f"cannot remove {directory}: {err.strerror} ({err.filename})") from None


# -- image config -> runtime config ---------------------------------------------------------------
def _apply_image_config(
    config: dict[str, Any], image_config: dict[str, Any], root: Path, args: list[str] | None, img: Any
) -> None:
    from .image.build import DEFAULT_PATH

    where = f"image {img.ref or img.digest}"
    process = config["process"]
    entrypoint = list(image_config.get("Entrypoint") or [])
    cmd = list(args) if args else list(image_config.get("Cmd") or [])
    argv = entrypoint + cmd
    if not argv:
        raise BundleError(
            f"{where} has neither Entrypoint nor Cmd; give the process arguments "
            "(harness bundle DIR --image ... -- ARGS)"
        )
    process["args"] = argv
    env = [e for e in (image_config.get("Env") or []) if isinstance(e, str)]
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, DEFAULT_PATH)
    process["env"] = env
    process["cwd"] = image_config.get("WorkingDir") or "/"
    process["user"] = resolve_user(root, image_config.get("User") or "", where)
    labels = image_config.get("Labels") or {}
    if labels:
        config["annotations"] = {str(k): str(v) for k, v in labels.items()}


def resolve_user(root: Path, user: str, where: str = "the image") -> dict[str, Any]:
    """The runtime-spec ``process.user`` for an image's ``User``: ``uid``, ``uid:gid``, ``name``,
    ``name:group`` (names from ``/etc/passwd`` and ``/etc/group`` of ``root``, read without
    leaving it). A user from passwd gets its primary group and the groups that list it;
    a numeric uid not in passwd gets gid 0."""
    name, _, group = user.partition(":")
    passwd = _parse_db(_read_in_root(root, "etc/passwd"), 7)
    groups = _parse_db(_read_in_root(root, "etc/group"), 4)
    uid, gid, login = 0, 0, "root"
    entry = None
    if name:
        if name.isdigit():
            uid = int(name)
            entry = next((e for e in passwd if e[2] == name), None)
        else:
            entry = next((e for e in passwd if e[0] == name), None)
            if entry is None:
                raise BundleError(
                    f"{where}: user {name!r} is not in the image's /etc/passwd; "
                    "use a numeric uid or add the user to the image"
                )
        if entry is not None:
            try:
                uid, gid, login = int(entry[2]), int(entry[3]), entry[0]
            except ValueError:
                raise BundleError(f"{where}: the /etc/passwd entry of {name!r} has a non-numeric uid or gid") from None
        else:
            login = ""
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            g = next((e for e in groups if e[0] == group), None)
            if g is None or not g[2].isdigit():
                raise BundleError(
                    f"{where}: group {group!r} is not in the image's /etc/group; "
                    "use a numeric gid or add the group to the image"
                )
            gid = int(g[2])
    out: dict[str, Any] = {"uid": uid, "gid": gid}
    if name and login and not group:
        extra = sorted({int(e[2]) for e in groups if e[2].isdigit() and login in e[3].split(",") and int(e[2]) != gid})
        if extra:
            out["additionalGids"] = extra
    return out


def _parse_db(data: bytes | None, fields: int) -> list[list[str]]:
    if not data:
        return []
    rows = []
    for line in data.decode(errors="replace").splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) >= fields - 1:
            rows.append(parts + [""] * (fields - len(parts)))
    return rows


def _open_in_root(root: Path, relpath: str) -> int | None:
    """An fd of ``relpath`` inside ``root``, with symlinks resolved as if ``root`` were ``/``
    (openat2 ``RESOLVE_IN_ROOT``, or a walk that follows no symlink); None if it does not exist."""
    from . import _linux

    try:
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return _linux.openat2(
            root_fd,
            relpath,
            os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK,
            _linux.RESOLVE_IN_ROOT | _linux.RESOLVE_NO_MAGICLINKS,
        )
    except OSError as err:
        if err.errno != errno.ENOSYS:
            return None
        return root_fd_walk(root_fd, relpath)
    finally:
        os.close(root_fd)


def _read_in_root(root: Path, relpath: str) -> bytes | None:
    """The content of ``relpath`` inside ``root`` (see :func:`_open_in_root`); None if it does
    not exist or is not a file."""
    fd = _open_in_root(root, relpath)
    if fd is None:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _executable_in_root(root: Path, relpath: str) -> bool:
    fd = _open_in_root(root, relpath)
    if fd is None:
        return False
    try:
        st = os.fstat(fd)
        return stat.S_ISREG(st.st_mode) and bool(st.st_mode & 0o111)
    finally:
        os.close(fd)


def check_runnable(bundle: Bundle) -> None:
    """Refuse, with one clear message, a bundle a runtime could only fail on: an invalid config,
    a missing rootfs, or a program (process.args[0]) that is not in the rootfs."""
    config = bundle.config()
    spec.check(config, source=str(bundle.config_path))
    root = bundle.rootfs
    if not root.is_dir():
        raise BundleError(f"{bundle.path}: the root filesystem {root} (root.path in config.json) is not a folder")
    args = config.get("process", {}).get("args") or []
    if not args:
        return
    program = args[0]
    if program.startswith("/"):
        candidates = [program]
    else:
        env_path = next((e.split("=", 1)[1] for e in config["process"].get("env", []) if e.startswith("PATH=")), "")
        candidates = [f"{d.rstrip('/')}/{program}" for d in env_path.split(":") if d.startswith("/")]
    if not any(_executable_in_root(root, c) for c in candidates):
        hint = (
            " (make the bundle with `harness bundle`, which installs the probe, or drop --no-probe)"
            if program == PROBE_PATH
            else ""
        )
        where = (
            program
            if program.startswith("/")
            else f"{program} in PATH {':'.join(c.rsplit('/', 1)[0] for c in candidates) or '(none)'}"
        )
        raise BundleError(f"{bundle.path}: the rootfs has no executable {where}, the container's program{hint}")


def root_fd_walk(root_fd: int, relpath: str) -> int | None:
    parts = [p for p in relpath.split("/") if p]
    cur = os.dup(root_fd)
    try:
        for comp in parts[:-1]:
            nxt = os.open(comp, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur)
            os.close(cur)
            cur = nxt
        return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=cur)
    except OSError:
        return None
    finally:
        os.close(cur)


class SharedProbe:
    """One copy of the probe that many bundles' rootfs hold as a hard link of it, instead of a
    copy each: ``create_bundle(..., probe_binary=SharedProbe(binary, folder))``.

    A copy of the probe (900 KB) per bundle allocates an inode and its data blocks, and removing
    the bundle frees them again (a discard each, on a file system mounted with ``discard``); on
    an ext4 without journal every later inode allocation in the group skips the inodes freed in
    the last seconds to minutes. A hard link allocates nothing. The bundles of a test run share
    the file as the overlay bundles share the probe's layer.

    The copy lives in ``folder`` (made when first needed), on the bundles' file system. Before
    each link it is checked: a copy whose mode, owner, size, modification or change time is not
    as it was after the last link (a container or a runtime changed ``/probe`` through one of
    the links) is left alone and a fresh copy is made, so no bundle gets a probe another case
    changed. Where a link cannot be made (another file system), the bundle gets a copy of its
    own."""

    def __init__(self, binary: Path, folder: Path):
        self.binary = Path(binary)
        self.folder = Path(folder)
        self._copy: Path | None = None
        self._key: tuple[int, ...] = ()
        self._made = 0

    @staticmethod
    def _identity(st: os.stat_result) -> tuple[int, ...]:
        return (st.st_dev, st.st_ino, st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _current(self) -> Path:
        """The shared copy, made afresh if there is none or it is no longer as made."""
        if self._copy is not None:
            try:
                if self._identity(os.stat(self._copy)) == self._key:
                    return self._copy
            except OSError:
                pass
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"probe{self._made}"
        self._made += 1
        path.unlink(missing_ok=True)
        _copy_probe(self.binary, path)
        self._copy, self._key = path, self._identity(os.stat(path))
        return path

    def install(self, target: Path) -> None:
        """Hard link the shared copy at ``target`` (a copy of the probe where that fails)."""
        copy = self._current()
        try:
            os.link(copy, target)
        except OSError:
            _copy_probe(self.binary, target)
            return
        self._key = self._identity(os.stat(copy))  # a link changes the ctime, a change after it too


def _copy_probe(source: Path, target: Path) -> None:
    shutil.copyfile(source, target, follow_symlinks=False)
    os.chmod(target, 0o755)


def _install_probe(root: Path, probe_binary: Path | SharedProbe | None) -> None:
    from .probe import build_probe

    source = probe_binary or build_probe()
    target = root / PROBE_PATH.lstrip("/")
    # The rootfs is the bundle's own copy: an older /probe (or a symlink there, never followed)
    # is replaced.
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        raise HarnessError(
            f"the rootfs holds a folder at {PROBE_PATH}, where the probe goes; remove it or use --no-probe"
        )
    if isinstance(source, SharedProbe):
        source.install(target)
    else:
        _copy_probe(Path(source), target)
