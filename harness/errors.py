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


#: What ``harness bench`` and ``harness report`` import beyond the core (the ``analysis`` extra).
ANALYSIS_MODULES = {"bench": ("numpy", "scipy"), "report": ("numpy", "scipy", "pandas", "matplotlib", "jinja2")}


def require_analysis(command: str) -> None:
    """Raise a :class:`HarnessError` naming the extra to install when ``harness COMMAND`` lacks
    the analysis libraries (they are not part of the core install)."""
    import importlib.util

    missing = []
    for name in ANALYSIS_MODULES[command]:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a module blocked or broken counts as missing
            found = False
        if not found:
            missing.append(name)
    if missing:
        raise HarnessError(
            f"{command} needs {', '.join(missing)} (not installed): install the analysis extra, "
            "pip install 'oci-harness[analysis]' (from a checkout: pip install -e '.[analysis]')"
        )
