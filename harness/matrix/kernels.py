"""Kernels for the matrix's cells: Debian kernel packages, fetched with ``apt-get download`` where
the host's apt sources offer them and otherwise straight from a Debian archive (``debian.py``:
signature, index and package all checked), checked against the SHA256 the package index gives,
unpacked with ``dpkg-deb`` and cached by that checksum (``<cache>/<sha256>/``), so a second run
boots at once and a changed package is a new entry, never a silent reuse.

A kernel is named by

* a short version (``6.1``, ``6.12``): the newest ``linux-image-<version>...-<arch>-unsigned``
  package (no cloud or realtime flavour) the apt sources offer, else the Debian archive;
* ``debian:<version>`` or ``debian:<package>``: from the Debian archive, whatever apt offers;
* a package name (``linux-image-6.1.0-55-amd64-unsigned``);
* a local ``.deb`` file, or a kernel image (``vmlinuz``) whose modules lie at
  ``../lib/modules/<release>/`` as in an unpacked package.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .._paths import cache_dir
from ..errors import HarnessError
from . import debian

#: flavours that are not the plain kernel of the architecture
_OTHER_FLAVOURS = ("-cloud-", "-rt-")


@dataclass
class Kernel:
    """A bootable kernel: its image, release (``uname -r``) and where it came from."""

    name: str  # as the user gave it: 6.1, a package, a path
    image: str  # the vmlinuz path
    release: str
    package: str = ""
    version: str = ""
    sha256: str = ""

    @property
    def label(self) -> str:
        """The short name a cell carries (``6.1``), from what the user gave."""
        if re.fullmatch(r"\d+\.\d+", self.name):
            return self.name
        match = re.match(r"(\d+\.\d+)", self.release)
        return match.group(1) if match else Path(self.name).name


def default_cache() -> Path:
    return cache_dir() / "kernels"


def _run(cmd: list[str], *, cwd: str | None = None, what: str) -> str:
    if not shutil.which(cmd[0]):
        raise HarnessError(
            f"{what} needs {cmd[0]!r}, which is not installed (Debian: apt-get install {_package_of(cmd[0])})"
        )
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise HarnessError(f"{what}: `{' '.join(cmd)}` failed ({detail[-1] if detail else f'exit {proc.returncode}'})")
    return proc.stdout


def _package_of(command: str) -> str:
    return {"depmod": "kmod", "dpkg-deb": "dpkg", "apt-get": "apt", "apt-cache": "apt"}.get(command, command)


def _arch() -> str:
    if shutil.which("dpkg"):
        return subprocess.run(
            ["dpkg", "--print-architecture"], capture_output=True, text=True, check=False
        ).stdout.strip()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


def _version_key(name: str) -> list[int | str]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def choose(names: list[str], version: str, arch: str) -> str | None:
    """The newest plain kernel package of ``version`` (``6.1``) among ``names``: unsigned where there
    is one (the same kernel, without the Secure Boot wrapper), no cloud or realtime flavour."""
    pattern = re.compile(rf"^linux-image-{re.escape(version)}[.-]\d\S*-{re.escape(arch)}(-unsigned)?$")
    found = [n for n in names if pattern.match(n) and not any(f in n for f in _OTHER_FLAVOURS)]
    unsigned = [n for n in found if n.endswith("-unsigned")]
    ranked = sorted(unsigned or found, key=_version_key, reverse=True)
    return ranked[0] if ranked else None


def package_for(version: str) -> str:
    """The newest plain kernel package of ``version`` (``6.1``) the apt sources offer."""
    arch = _arch()
    names = _run(["apt-cache", "pkgnames", "linux-image-"], what=f"finding a {version} kernel").split()
    while name := choose(names, version, arch):
        if _index_entry(name):  # a name without a candidate (only referenced) is passed over
            return name
        names.remove(name)
    raise HarnessError(
        f"no Debian kernel package for {version} ({arch}) in the apt sources "
        f"(looked for linux-image-{version}...-{arch}-unsigned); run apt-get update, add a suite that has one, "
        "or name a package or a .deb"
    )


def _index_entry(package: str) -> dict[str, str]:
    proc = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", package], capture_output=True, text=True, check=False
    )
    fields: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        if ":" in line and not line.startswith(" "):
            key, value = line.split(":", 1)
            fields.setdefault(key, value.strip())
    return fields if "SHA256" in fields and "Version" in fields else {}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class _Offer:
    """A kernel package found in an index: what to download and the SHA256 it must have."""

    package: str
    version: str
    sha256: str
    size: int
    download: Callable[[Path], Path]  # into a folder; the .deb's path


def _from_apt(name: str) -> _Offer:
    package = name if name.startswith("linux-image-") else package_for(name)
    entry = _index_entry(package)
    if not entry:
        raise HarnessError(f"kernel {name}: the apt sources offer no package {package} (run apt-get update?)")

    def download(into: Path) -> Path:
        os.chmod(into, 0o755)  # apt's _apt user may write it
        _run(
            ["apt-get", "download", "-q", f"{package}={entry['Version']}"], cwd=str(into), what=f"downloading {package}"
        )
        debs = list(into.glob("*.deb"))
        if len(debs) != 1:
            raise HarnessError(f"downloading {package}: expected one .deb, found {[d.name for d in debs]}")
        return debs[0]

    return _Offer(package, entry["Version"], entry["SHA256"], int(entry.get("Size", 0)), download)


def _from_archive(name: str, log) -> _Offer:
    arch = _arch()
    if name.startswith("linux-image-"):
        found = debian.find(name, arch, lambda names, package, _arch: package if package in names else None, log=log)
    else:
        found = debian.find(name, arch, choose, log=log)
    return _Offer(found.name, found.version, found.sha256, found.size, lambda into: debian.fetch_package(found, into))


def _offer(name: str, log) -> _Offer:
    """Where ``name`` comes from: ``debian:...`` from the archive; otherwise apt, and the archive
    when apt cannot offer it (no apt, or no such kernel in its sources)."""
    if name.startswith("debian:"):
        return _from_archive(name.removeprefix("debian:"), log)
    try:
        return _from_apt(name)
    except HarnessError as apt_problem:
        log(f"kernel {name}: not from apt ({apt_problem}); trying the Debian archive {debian.mirror()}")
        return _from_archive(name, log)


def fetch(name: str, cache: Path | None = None, log=print) -> Kernel:
    """The kernel ``name`` names, downloaded and unpacked into the cache if it is not there."""
    cache = Path(cache) if cache else default_cache()
    path = Path(name)
    if path.is_file() and not name.endswith(".deb"):
        return _from_image(name, path)
    if name.endswith(".deb"):
        if not path.is_file():
            raise HarnessError(f"kernel {name}: no such .deb file")
        return _unpack(name, path, _sha256(path), cache, package=path.name, version="", log=log)
    offer = _offer(name, log)
    done = cache / offer.sha256 / "kernel.json"
    if done.is_file():
        return Kernel(**{**json.loads(done.read_text()), "name": name})
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache) as tmp:
        log(f"kernel {name}: downloading {offer.package} {offer.version} ({offer.size >> 20} MB)")
        deb = offer.download(Path(tmp))
        got = _sha256(deb)
        if got != offer.sha256:
            raise HarnessError(f"{deb.name}: SHA256 {got} is not the package index's {offer.sha256}; not used")
        return _unpack(name, deb, offer.sha256, cache, package=offer.package, version=offer.version, log=log)


def _unpack(name: str, deb: Path, sha: str, cache: Path, *, package: str, version: str, log) -> Kernel:
    final = cache / sha
    if (final / "kernel.json").is_file():
        return Kernel(**{**json.loads((final / "kernel.json").read_text()), "name": name})
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=cache))
    os.chmod(tmp, 0o755)
    try:
        _run(["dpkg-deb", "-x", str(deb), str(tmp)], what=f"unpacking {deb.name}")
        images = sorted((tmp / "boot").glob("vmlinuz-*"))
        if not images:
            raise HarnessError(f"{deb.name} holds no boot/vmlinuz-*: not a kernel image package")
        release = images[0].name.removeprefix("vmlinuz-")
        modules = tmp / "lib" / "modules" / release
        if not modules.is_dir():
            modules = tmp / "usr" / "lib" / "modules" / release
        if modules.is_dir():  # the package leaves modules.dep to its postinst
            _run(["depmod", "-a", "-b", str(modules.parents[2]), release], what=f"indexing the modules of {release}")
        kernel = Kernel(
            name=name,
            image=str(final / images[0].relative_to(tmp)),
            release=release,
            package=package,
            version=version,
            sha256=sha,
        )
        (tmp / "kernel.json").write_text(json.dumps(asdict(kernel), indent=1) + "\n")
        try:
            os.rename(tmp, final)
        except OSError:  # another run unpacked it meanwhile
            if not (final / "kernel.json").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
        log(f"kernel {name}: {release} cached in {final}")
        return kernel
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _from_image(name: str, path: Path) -> Kernel:
    match = re.search(r"vmlinuz-(\S+)$", path.name)
    if not match:
        raise HarnessError(
            f"kernel {name}: a kernel image must be named vmlinuz-<release> (its modules beside it in ../lib/modules/<release>)"
        )
    return Kernel(name=name, image=str(path.resolve()), release=match.group(1))
