"""oci-reference: a small OCI runtime written in Python (stdlib + ctypes only).

The package imports nothing outside the standard library, so it can be used on its own.
Modules are imported lazily by the command line so that each command only pays for what
it uses.
"""

__version__ = "0.1.0"
SPEC_VERSION = "1.3.0"
SPEC_VERSION_MIN = "1.0.0"
