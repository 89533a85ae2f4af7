"""OCI runtime-spec conformance and benchmarking harness.

The public API, re-exported here: configs (:mod:`harness.spec`), bundles, the runtime adapter,
and the errors. Everything else is internal.
"""

from .bundle import Bundle, create_bundle
from .errors import BundleError, ConfigError, HarnessError, ProbeBuildError, RootfsError
from .runtime import (
    Container,
    Exit,
    Runtime,
    RuntimeCallError,
    RuntimeDefinition,
    RuntimeNotFound,
    RuntimeTimeout,
    State,
    resolve,
)

__all__ = [
    "Bundle",
    "BundleError",
    "ConfigError",
    "Container",
    "Exit",
    "HarnessError",
    "ProbeBuildError",
    "RootfsError",
    "Runtime",
    "RuntimeCallError",
    "RuntimeDefinition",
    "RuntimeNotFound",
    "RuntimeTimeout",
    "State",
    "create_bundle",
    "resolve",
]
__version__ = "0.1.0"
