"""The harness's one HTTP(S) download: streamed into a file object, hashed on the way, every
failure (HTTP status, name resolution, a dropped connection, a full disk) one :class:`DownloadFailed`
whose ``reason`` the caller puts into its own error with what the user can do about it."""

from __future__ import annotations

import hashlib
import http.client
import io
import urllib.error
import urllib.request
from typing import BinaryIO

_CHUNK = 1 << 20


class DownloadFailed(Exception):
    """``reason`` says why, in a few words (``HTTP 404 Not Found``, ``Name or service not known``)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class WriteFailed(DownloadFailed):
    """The download arrived but could not be written where it was going (``reason``: the OS error)."""


def download(url: str, out: BinaryIO, timeout: float, limit: int | None = None) -> str:
    """Stream ``url`` into ``out``; the SHA256 (hex) of what was written. More than ``limit``
    bytes is a failure (a mirror serving something else than it should)."""
    digest = hashlib.sha256()
    size = 0
    request = urllib.request.Request(url, headers={"User-Agent": "oci-harness"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if limit is not None and size > limit:
                    raise DownloadFailed(url, f"larger than the {limit >> 20} MB expected")
                digest.update(chunk)
                try:
                    out.write(chunk)
                except OSError as err:
                    raise WriteFailed(url, str(err.strerror or err)) from None
    except urllib.error.HTTPError as err:
        err.close()
        raise DownloadFailed(url, f"HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise DownloadFailed(url, str(err.reason)) from None
    except (OSError, http.client.HTTPException) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err) or type(err).__name__
        raise DownloadFailed(url, reason) from None
    return digest.hexdigest()


def download_bytes(url: str, timeout: float, limit: int = 64 << 20) -> bytes:
    """The body of ``url`` in memory (small files: indexes, signatures)."""
    buffer = io.BytesIO()
    download(url, buffer, timeout, limit)
    return buffer.getvalue()
