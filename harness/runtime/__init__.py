"""The runtime adapter: drives any binary that speaks the OCI runtime command line.

* :mod:`.definition` -- what differs between runtimes, as data (``runtimes/*.toml``):
  :class:`RuntimeDefinition`, :func:`resolve`, expected failures.
* :mod:`.adapter` -- :class:`Runtime`: the spec's operations as command lines on one state
  root, each with a deadline; :class:`State`; :class:`RuntimeCallError`.
* :mod:`.container` -- :class:`Container`: one container's life (stdio in files,
  create/start/wait, a ``cleanup`` that always removes it).
* :mod:`.process` -- process identity (pid and start time), reaping and waiting: the one reader
  of ``/proc/PID/stat`` and the one collector of exit statuses.
* :mod:`.cgroups` -- the cgroups a runtime made for a container, removed if it leaves them.
* :mod:`.session` -- :func:`open_session`, the one way to run containers: a state root, the
  run journal, the subreaper, and cleanup when the block ends; runtimes come from
  :meth:`Session.runtime`.

Cases import what they need from here (``from harness.runtime import RuntimeCallError``).
"""

from ..errors import HarnessError
from .adapter import (
    MAX_SCALE,
    Runtime,
    RuntimeCallError,
    RuntimeTimeout,
    State,
    default_state_root_base,
    scaled,
    timeout_scale,
)
from .cgroups import named_cgroups, own_cgroups, remove_empty_cgroups
from .container import Container
from .definition import (
    DEFAULT_TIMEOUT,
    ConfigVersion,
    ExpectedFailure,
    PrivateMountNamespace,
    RuntimeDefinition,
    RuntimeNotFound,
    definitions_dir,
    load_definitions,
    resolve,
)
from .process import Exit, reap_orphans
from .session import Session, open_session

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_SCALE",
    "ConfigVersion",
    "Container",
    "Exit",
    "ExpectedFailure",
    "HarnessError",
    "PrivateMountNamespace",
    "Runtime",
    "RuntimeCallError",
    "RuntimeDefinition",
    "RuntimeNotFound",
    "RuntimeTimeout",
    "Session",
    "State",
    "default_state_root_base",
    "definitions_dir",
    "load_definitions",
    "named_cgroups",
    "open_session",
    "own_cgroups",
    "reap_orphans",
    "remove_empty_cgroups",
    "resolve",
    "scaled",
    "timeout_scale",
]
