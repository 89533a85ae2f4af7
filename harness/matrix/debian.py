"""Debian kernel packages straight from a Debian archive, for hosts whose apt sources are not
Debian's (Ubuntu, Fedora, a CI runner) or lack the version asked for.

Nothing is taken on trust: a suite's ``InRelease`` must carry a valid signature by a key of the
Debian archive keyring (checked with ``gpgv``); the package index must have the SHA256 the signed
``InRelease`` gives; the package must have the SHA256 the index gives (checked by the caller, which
caches by it). The archive is ``$HARNESS_DEBIAN_MIRROR`` (default ``http://deb.debian.org/debian``;
plain HTTP is what apt uses too: the signature, not the transport, is what is trusted), the keyring
``$HARNESS_DEBIAN_KEYRING`` (default: the one the ``debian-archive-keyring`` package installs).
"""

from __future__ import annotations

import hashlib
import lzma
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import download
from ..errors import HarnessError

MIRROR_ENV = "HARNESS_DEBIAN_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
KEYRING_ENV = "HARNESS_DEBIAN_KEYRING"
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
#: the suites searched for a version, in this order: 6.1 is bookworm's, 6.12 trixie's, 5.10 bullseye's
SUITES = ("bookworm", "trixie", "bullseye", "bookworm-backports")
TIMEOUT = 120.0


@dataclass(frozen=True)
class Package:
    """One package of a suite's index."""

    name: str
    version: str
    filename: str  # its path below the mirror (pool/main/l/linux-signed.../...deb)
    sha256: str
    size: int
    suite: str


def mirror() -> str:
    return os.environ.get(MIRROR_ENV, DEFAULT_MIRROR).rstrip("/")


def keyring() -> str:
    return os.environ.get(KEYRING_ENV, DEFAULT_KEYRING)


def _fetch(url: str, what: str) -> bytes:
    try:
        return download.download_bytes(url, TIMEOUT, limit=256 << 20)
    except download.DownloadFailed as err:
        raise HarnessError(
            f"{what}: cannot download {url} ({err.reason}); without network access, name a kernel .deb "
            f"or a vmlinuz with --kernel, or point {MIRROR_ENV} at a reachable Debian mirror"
        ) from None


def verified_release(suite: str, base: str, ring: str) -> str:
    """The text of ``suite``'s InRelease, once gpgv has found its signature good."""
    gpgv = shutil.which("gpgv")
    if not gpgv:
        raise HarnessError(
            "fetching a Debian kernel needs gpgv to check the archive's signature (apt-get install gpgv)"
        )
    if not os.path.isfile(ring):
        raise HarnessError(
            f"fetching a Debian kernel needs the Debian archive keyring {ring} (apt-get install "
            f"debian-archive-keyring), or {KEYRING_ENV} naming another keyring file"
        )
    signed = _fetch(f"{base}/dists/{suite}/InRelease", f"Debian suite {suite}")
    with tempfile.TemporaryDirectory(prefix="oci-harness-gpgv-") as tmp:
        (Path(tmp) / "InRelease").write_bytes(signed)
        proc = subprocess.run(
            [gpgv, "--keyring", ring, "--output", f"{tmp}/verified", f"{tmp}/InRelease"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not (Path(tmp) / "verified").is_file():
            last = (proc.stderr.strip().splitlines() or ["no signature"])[-1]
            raise HarnessError(
                f"Debian suite {suite} at {base}: InRelease has no good signature by a key of {ring} ({last}); not used"
            )
        return (Path(tmp) / "verified").read_text(errors="replace")


def _index_hash(release: str, path: str) -> tuple[str, int] | None:
    """The SHA256 and size ``release`` (an InRelease's text) gives for ``path``."""
    in_sha256 = False
    for line in release.splitlines():
        if not line.startswith(" "):
            in_sha256 = line.rstrip() == "SHA256:"
            continue
        parts = line.split()
        if in_sha256 and len(parts) == 3 and parts[2] == path:
            return parts[0], int(parts[1])
    return None


def packages(suite: str, arch: str, base: str | None = None, ring: str | None = None) -> list[Package]:
    """Every kernel image package of ``suite``'s main component for ``arch``, from its verified index."""
    base = base or mirror()
    release = verified_release(suite, base, ring or keyring())
    path = f"main/binary-{arch}/Packages.xz"
    expected = _index_hash(release, path)
    if expected is None:
        raise HarnessError(f"Debian suite {suite} at {base}: its InRelease lists no {path}")
    data = _fetch(f"{base}/dists/{suite}/{path}", f"Debian suite {suite}")
    got = hashlib.sha256(data).hexdigest()
    if (got, len(data)) != expected:
        raise HarnessError(
            f"Debian suite {suite} at {base}: {path} has SHA256 {got} ({len(data)} bytes), not the signed "
            f"InRelease's {expected[0]} ({expected[1]} bytes); not used"
        )
    found = []
    for stanza in lzma.decompress(data).decode(errors="replace").split("\n\n"):
        if not stanza.startswith("Package: linux-image-"):
            continue
        fields = {
            key: value.strip()
            for key, value in (line.split(":", 1) for line in stanza.splitlines() if ":" in line and line[0] != " ")
        }
        if {"Package", "Version", "Filename", "SHA256", "Size"} <= fields.keys():
            found.append(
                Package(
                    fields["Package"],
                    fields["Version"],
                    fields["Filename"],
                    fields["SHA256"],
                    int(fields["Size"]),
                    suite,
                )
            )
    return found


def find(name: str, arch: str, choose, log=print) -> Package:
    """The package ``choose(names, name, arch)`` picks among a suite's package names, in the first
    suite where it picks one: for a version (``6.1``) the newest plain kernel (the same rule as for
    apt), for a package name that package."""
    base = mirror()
    for suite in SUITES:
        offered = {p.name: p for p in packages(suite, arch, base)}
        picked = choose(list(offered), name, arch)
        if picked:
            log(f"kernel {name}: {picked} {offered[picked].version} from {base} ({suite}, signature checked)")
            return offered[picked]
    raise HarnessError(
        f"no Debian kernel package for {name} ({arch}) in {base} (suites {', '.join(SUITES)}); "
        "name a package, a .deb or a vmlinuz with --kernel"
    )


def fetch_package(package: Package, into: Path) -> Path:
    """Download ``package`` into the folder ``into``; its path. The caller checks its SHA256."""
    url = f"{mirror()}/{package.filename}"
    path = into / Path(package.filename).name
    if not re.fullmatch(r"[\w.+~-]+\.deb", path.name):
        raise HarnessError(f"{url}: not a .deb file name; not used")
    try:
        with open(path, "wb") as out:
            download.download(url, out, TIMEOUT, limit=package.size + 1)
    except download.DownloadFailed as err:
        raise HarnessError(f"cannot download {url} ({err.reason})") from None
    return path
