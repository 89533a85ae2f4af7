"""Command line, shaped like runc's:

    oci-reference [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND ...

Errors: exit status 1 and one line on stderr, "oci-reference: <problem>".
"""

import posix  # not `os`: its import is a good part of a small command's run time
import sys

PROG = "oci-reference"
DEFAULT_ROOT = "/run/oci-reference"

USAGE = f"""usage: {PROG} [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND [ARGS]

commands:
  create [--bundle DIR] [--pid-file FILE] [--console-socket SOCK] [--preserve-fds N] ID
  start ID
  state ID
  kill [--all] ID [SIGNAL]        (SIGNAL also as --signal; default TERM)
  delete [--force] ID
  run [--bundle DIR] [--pid-file FILE] [--console-socket SOCK] [--detach] ID
  list
  features
  spec                            (print a default config.json)
  --version
"""


class UsageError(Exception):
    pass


class Logger:
    def __init__(self, path=None, fmt="text", debug=False):
        self.path = path
        self.fmt = fmt
        self.debug_on = debug

    def _write(self, level, msg):
        if not self.path:
            return
        import time

        ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if self.fmt == "json":
            from oci_reference import jsonlite

            line = jsonlite.dumps({"level": level, "msg": msg, "time": ts})
        else:
            line = f'time="{ts}" level={level} msg="{msg}"'
        try:
            with open(self.path, "a") as f:
                f.write(line + "\n")
        except OSError:
            pass

    def error(self, msg):
        self._write("error", msg)

    def warn(self, msg):
        self._write("warning", msg)
        sys.stderr.write(f"{PROG}: warning: {msg}\n")

    def debug(self, msg):
        if self.debug_on:
            self._write("debug", msg)


def _parse(args, flags, valued, aliases=None):
    """Split `args` into (options dict, positionals).  Accepts --opt v, --opt=v, -o v."""
    aliases = aliases or {}
    opts = {}
    pos = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            pos.extend(args[i + 1 :])
            break
        if a.startswith("-") and a != "-":
            name, eq, val = a.partition("=")
            name = aliases.get(name, name)
            key = name.lstrip("-")
            if key in flags:
                opts[key] = True if not eq else val.lower() not in ("false", "0")
            elif key in valued:
                if not eq:
                    i += 1
                    if i >= len(args):
                        raise UsageError(f"option {name} needs a value")
                    val = args[i]
                opts[key] = val
            else:
                raise UsageError(f"unknown option {name}")
        else:
            pos.append(a)
        i += 1
    return opts, pos


def _one_id(pos, cmd):
    if len(pos) != 1:
        raise UsageError(f"{cmd}: expected exactly one container id" + (f", got {len(pos)}" if pos else ""))
    return pos[0]


def main(argv=None):
    """Entry point.  Called without argv (as a program), it leaves through os._exit once
    the output is flushed: interpreter teardown is pure overhead for a short command."""
    if argv is None:
        code = _guarded(sys.argv[1:])
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        posix._exit(code)
    return _guarded(argv)


def _guarded(argv):
    log = Logger()
    try:
        return _main(argv, log)
    except UsageError as e:
        sys.stderr.write(f"{PROG}: {e}\n")
        log.error(str(e))
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        from oci_reference.errors import RuntimeFailure

        if isinstance(e, RuntimeFailure):
            msg = str(e)
        elif isinstance(e, OSError):
            msg = e.strerror or str(e)
            if e.filename:
                msg += f": {e.filename}"
        else:
            if log.debug_on:
                raise
            msg = f"internal error: {type(e).__name__}: {e}"
        sys.stderr.write(f"{PROG}: {msg}\n")
        log.error(msg)
        return 1


def _main(argv, log):
    root = DEFAULT_ROOT
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        a = argv[i]
        name, eq, val = a.partition("=")
        if name in ("--version", "-v"):
            from oci_reference import SPEC_VERSION, __version__

            sys.stdout.write(f"{PROG} version {__version__}\nspec: {SPEC_VERSION}\n")
            return 0
        if name in ("--help", "-h"):
            sys.stdout.write(USAGE)
            return 0
        if name == "--debug":
            log.debug_on = True
        elif name in ("--systemd-cgroup", "--rootless"):
            pass  # accepted for runc compatibility; the cgroupfs driver is always used
        elif name in ("--root", "--log", "--log-format", "--criu"):
            if not eq:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"option {name} needs a value")
                val = argv[i]
            if name == "--root":
                root = _abspath(val)
            elif name == "--log":
                log.path = val
            elif name == "--log-format":
                if val not in ("text", "json"):
                    raise UsageError(f"--log-format must be text or json, not {val!r}")
                log.fmt = val
        else:
            raise UsageError(f"unknown global option {name}")
        i += 1
    if i >= len(argv):
        sys.stderr.write(USAGE)
        return 2
    cmd, args = argv[i], argv[i + 1 :]
    if cmd in ("create", "run"):
        from oci_reference import warmup

        warmup.start()  # first: its grace period then passes while the rest loads
    handler = COMMANDS.get(cmd)
    if handler is None:
        raise UsageError(f"unknown command {cmd!r}")
    return handler(root, args, log) or 0


def _abspath(p):
    if not p.startswith("/"):
        p = posix.getcwd() + "/" + p
    parts = []
    for c in p.split("/"):
        if c == "..":
            if parts:
                parts.pop()
        elif c and c != ".":
            parts.append(c)
    return "/" + "/".join(parts)


def cmd_create(root, args, log):
    opts, pos = _parse(
        args,
        {"no-pivot", "no-new-keyring"},
        {"bundle", "pid-file", "console-socket", "preserve-fds"},
        {"-b": "--bundle"},
    )
    cid = _one_id(pos, "create")
    from oci_reference import container

    container.create(
        root,
        cid,
        opts.get("bundle"),
        opts.get("pid-file"),
        opts.get("console-socket"),
        _int_opt(opts, "preserve-fds"),
        warn=log.warn,
    )
    return 0


def _int_opt(opts, key):
    v = opts.get(key, "0")
    try:
        n = int(v)
    except ValueError:
        raise UsageError(f"--{key} must be a number") from None
    if n < 0:
        raise UsageError(f"--{key} must not be negative")
    return n


def cmd_run(root, args, log):
    opts, pos = _parse(
        args,
        {"detach", "no-pivot", "no-new-keyring", "keep"},
        {"bundle", "pid-file", "console-socket", "preserve-fds"},
        {"-b": "--bundle", "-d": "--detach"},
    )
    cid = _one_id(pos, "run")
    from oci_reference import container

    return container.run(
        root,
        cid,
        opts.get("bundle"),
        opts.get("pid-file"),
        opts.get("console-socket"),
        _int_opt(opts, "preserve-fds"),
        bool(opts.get("detach")),
        warn=log.warn,
    )


def cmd_start(root, args, log):
    _, pos = _parse(args, set(), set())
    from oci_reference import ops

    ops.start(root, _one_id(pos, "start"), warn=log.warn)
    return 0


def cmd_state(root, args, log):
    _, pos = _parse(args, set(), set())
    from oci_reference import jsonlite, state

    st = state.load(root, _one_id(pos, "state"))
    sys.stdout.write(jsonlite.dumps(state.public(st), indent=2) + "\n")
    return 0


def cmd_kill(root, args, log):
    opts, pos = _parse(args, {"all"}, {"signal"}, {"-a": "--all", "-s": "--signal"})
    if not pos or len(pos) > 2:
        raise UsageError("kill: usage: kill [--all] ID [SIGNAL]")
    if len(pos) == 2 and "signal" in opts:
        raise UsageError("kill: signal given twice")
    sigtext = pos[1] if len(pos) == 2 else opts.get("signal", "TERM")
    from oci_reference import ops, signals

    ops.kill(root, pos[0], signals.parse(sigtext), bool(opts.get("all")))
    return 0


def cmd_delete(root, args, log):
    opts, pos = _parse(args, {"force"}, set(), {"-f": "--force"})
    from oci_reference import ops

    ops.delete(root, _one_id(pos, "delete"), bool(opts.get("force")), warn=log.warn)
    return 0


def cmd_list(root, args, log):
    _parse(args, set(), set())
    from oci_reference import state

    try:
        names = sorted(posix.listdir(root))
    except FileNotFoundError:
        names = []
    sys.stdout.write(f"{'ID':<24} {'PID':<8} {'STATUS':<10} BUNDLE\n")
    for n in names:
        try:
            st = state.load(root, n)
        except Exception:
            continue
        pub = state.public(st)
        sys.stdout.write(f"{n:<24} {pub['pid']:<8} {pub['status']:<10} {pub['bundle']}\n")
    return 0


def cmd_features(root, args, log):
    _parse(args, set(), set())
    from oci_reference import features, jsonlite

    sys.stdout.write(jsonlite.dumps(features.features(), indent=2) + "\n")
    return 0


def cmd_spec(root, args, log):
    _parse(args, set(), set())
    from oci_reference import features, jsonlite

    sys.stdout.write(jsonlite.dumps(features.default_spec(), indent=2) + "\n")
    return 0


COMMANDS = {
    "create": cmd_create,
    "start": cmd_start,
    "state": cmd_state,
    "kill": cmd_kill,
    "delete": cmd_delete,
    "run": cmd_run,
    "list": cmd_list,
    "features": cmd_features,
    "spec": cmd_spec,
}
