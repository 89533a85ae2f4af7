"""The errors the harness raises.

Every error a user can meet is a :class:`HarnessError`: its message names the problem and, where
there is one, what to do about it. The CLI prints the message and exits non-zero; it never shows a
traceback for these.
"""

from __future__ import annotations


class HarnessError(Exception):
    """A problem the user can act on; ``str(err)`` is the whole message."""


class ConfigError(HarnessError):
    """A config.json that is malformed or breaks the runtime spec's rules."""


class ProbeBuildError(HarnessError):
    """The in-container probe could not be built."""


class RootfsError(HarnessError):
    """A root filesystem source that cannot be used (missing, corrupt, checksum mismatch...)."""


class BundleError(HarnessError):
    """A bundle folder that cannot be made or used."""
