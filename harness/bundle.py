"""OCI bundles: a folder holding config.json and a root filesystem (runtime-spec bundle.md).

:func:`create_bundle` makes one from a rootfs source (see :mod:`harness.rootfs`), installs the
probe at ``/probe`` and writes a validated config. It only ever writes inside the folder it was
given, refuses a folder that already holds something, and removes what it made if it fails.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import spec
from .errors import BundleError, HarnessError

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

    def edit(self, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Apply ``change`` to the config in place, validate and write it; returns the new config."""
        config = self.config()
        change(config)
        self.write_config(config)
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
    probe_binary: Path | None = None,
) -> Bundle:
    """Make a bundle in ``directory`` (which must not exist, or be empty).

    ``rootfs`` is ``probe`` (the probe alone), ``alpine`` (the Alpine minirootfs; ``rootfs_tar``
    gives a local copy), or the path of a folder or tarball. ``args`` default to the probe's
    ``hostname`` verb for a probe rootfs and to ``sh`` otherwise. ``process.terminal`` is false.
    """
    from . import rootfs as _rootfs

    directory = Path(directory)
    made_dir = not directory.exists()
    if not made_dir:
        if not directory.is_dir():
            raise BundleError(f"{directory} exists and is not a folder; choose another bundle path")
        if any(directory.iterdir()):
            raise BundleError(f"{directory} is not empty; a bundle needs an empty or new folder (remove it or choose another)")
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
        config["root"]["readonly"] = readonly
        config["hostname"] = hostname if hostname is not None else "oci-harness"
        bundle = Bundle(directory)
        made.append(bundle.config_path)
        bundle.write_config(config)
        return bundle
    except BaseException:
        if made_dir:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            for path in made:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        raise


def _install_probe(root: Path, probe_binary: Path | None) -> None:
    from .probe import build_probe

    source = probe_binary or build_probe()
    target = root / PROBE_PATH.lstrip("/")
    # The rootfs is the bundle's own copy: an older /probe (or a symlink there, never followed)
    # is replaced.
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        raise HarnessError(f"the rootfs holds a folder at {PROBE_PATH}, where the probe goes; remove it or use --no-probe")
    shutil.copyfile(source, target, follow_symlinks=False)
    os.chmod(target, 0o755)
