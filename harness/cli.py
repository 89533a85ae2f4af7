"""The ``harness`` command line.

Each subcommand is a plain function taking the parsed arguments and returning an exit code;
errors the user can act on are :class:`~harness.errors.HarnessError` and are printed as one
message, never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import uuid
from pathlib import Path

from .errors import HarnessError


def cmd_spec(args: argparse.Namespace) -> int:
    from . import spec

    bundle = Path(args.bundle)
    if not bundle.is_dir():
        raise HarnessError(f"{bundle}: no such folder (create it first, or pass --bundle DIR)")
    target = bundle / "config.json"
    if target.exists():
        raise HarnessError(f"{target} exists; remove it first (harness spec never overwrites a config)")
    spec.dump(spec.default_config(rootless=args.rootless), target)
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from .bundle import create_bundle

    bundle = create_bundle(
        Path(args.dir),
        rootfs=args.rootfs,
        rootfs_tar=Path(args.rootfs_tar) if args.rootfs_tar else None,
        hostname=args.hostname,
        args=args.process_args or None,
        readonly=not args.writable,
        install_probe=not args.no_probe,
    )
    print(bundle.path)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from . import _linux, runtime, spec

    bundle = Path(args.bundle)
    if not bundle.is_dir():
        raise HarnessError(f"{bundle}: no such bundle folder")
    spec.check(spec.load(bundle / "config.json"), source=str(bundle / "config.json"))
    definition = runtime.resolve(args.runtime)
    # Adopt the container's init once `create` returns, so its exit status is ours to read.
    _linux.set_child_subreaper()
    container_id = args.id or f"harness-run-{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory(prefix="harness-run-") as tmp:
        state_root = runtime.default_state_root_base() / f"run-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        rt = runtime.Runtime(definition, state_root, timeout=args.timeout)
        container = runtime.Container(rt, container_id, bundle, Path(tmp))
        interrupted = False

        def on_signal(signum: int, _frame: object) -> None:
            raise KeyboardInterrupt

        old = signal.signal(signal.SIGTERM, on_signal)
        try:
            container.create(stdin=None if args.stdin else runtime.subprocess.DEVNULL)
            container.start()
            end = container.wait(timeout=args.wait_timeout, stream=(sys.stdout.buffer, sys.stderr.buffer))
        except KeyboardInterrupt:
            interrupted = True
            end = runtime.Exit(signal=signal.SIGINT)
        finally:
            signal.signal(signal.SIGTERM, old)
            container.cleanup()
            _remove_empty_tree(state_root)
        if interrupted:
            print(f"harness: interrupted; container {container_id} removed", file=sys.stderr)
            return 130
        if end.shell_code is None:
            print(f"harness: {rt.name} did not let the harness see the exit status of container {container_id}", file=sys.stderr)
            return 0
        return end.shell_code


def _remove_empty_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    try:
        path.parent.rmdir()  # the shared base, if no other run uses it
    except OSError:
        pass


def cmd_runtimes(args: argparse.Namespace) -> int:
    from . import runtime

    defs = runtime.load_definitions()
    rows = [("NAME", "BINARY", "VERSION", "DESCRIPTION")]
    for name, d in defs.items():
        path = d.find_binary()
        version = ""
        if path:
            try:
                version = runtime.Runtime(d, Path("/nonexistent")).version()
            except HarnessError:
                version = ""
        hint = f"not installed (apt-get install {d.debian_package})" if d.debian_package else "not installed"
        rows.append((name, path or hint, version or "-", d.description))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip())
    return 0


def cmd_requirements(args: argparse.Namespace) -> int:
    import json

    from . import requirements

    rows = requirements.coverage(requirements.collect_cases(Path(args.cases)))
    if args.json:
        print(json.dumps([{**r.requirement.__dict__, "status": r.status, "cases": r.cases} for r in rows], indent=2))
        return 0
    shown = [r for r in rows if not args.uncovered or not r.cases]
    width = max((len(r.requirement.id) for r in shown), default=10)
    for r in shown:
        req = r.requirement
        where = ", ".join(c.split("/")[-1] for c in r.cases) if r.cases else (f"not testable: {req.why}" if not req.testable else "NOT COVERED")
        print(f"{req.id:<{width}}  {req.level:<10}  {req.anchor:<40}  {where}")
    print()
    print("Totals (covered/total)")
    per_file: dict[str, dict[str, tuple[int, int]]] = {}
    for (file, strength), counts in requirements.totals(rows).items():
        per_file.setdefault(file, {})[strength] = counts
    for file, levels in per_file.items():
        cells = "   ".join(f"{lvl}: {levels[lvl][0]}/{levels[lvl][1]}" for lvl in ("MUST", "SHOULD", "MAY") if lvl in levels)
        print(f"  {file:<18} {cells}")
    covered = sum(1 for r in rows if r.cases)
    print(f"  {'all':<18} {covered}/{len(rows)} requirements covered")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description="OCI runtime-spec conformance and benchmarking harness")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("spec", help="write a default config.json (the content `runc spec` gives)")
    p.add_argument("--rootless", action="store_true", help="a config for a rootless container (user namespace)")
    p.add_argument("--bundle", "-b", default=".", help="the bundle folder to write config.json into (default: .)")
    p.set_defaults(func=cmd_spec)

    p = sub.add_parser("bundle", help="make a bundle: config.json and a root filesystem", usage="harness bundle DIR --rootfs SOURCE [options] [-- ARGS...]")
    p.add_argument("dir", metavar="DIR", help="the bundle folder to create (new or empty)")
    p.add_argument("--rootfs", default="probe", metavar="SOURCE", help="probe (default), alpine, or the path of a folder or tarball")
    p.add_argument("--rootfs-tar", metavar="PATH", help="with --rootfs alpine: use this local minirootfs tarball instead of downloading it")
    p.add_argument("--hostname", metavar="NAME", help="the container's hostname")
    p.add_argument("--writable", action="store_true", help="a writable root filesystem (default: read-only, like runc spec)")
    p.add_argument("--no-probe", action="store_true", help="do not install the probe at /probe")
    p.set_defaults(func=cmd_bundle)

    p = sub.add_parser("run", help="create, start and wait for a container, then delete it; exits with its exit code")
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("--runtime", "-r", default=os.environ.get("HARNESS_RUNTIME", "runc"), metavar="NAME|PATH")
    p.add_argument("--id", help="container id (default: a fresh unique one)")
    p.add_argument("--timeout", type=float, default=None, metavar="S", help="timeout of each runtime call")
    p.add_argument("--wait-timeout", type=float, default=3600.0, metavar="S", help="how long to wait for the container to exit")
    p.add_argument("--stdin", action="store_true", help="pass this process's stdin to the container (default: /dev/null)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("requirements", help="the spec requirement catalogue and which cases cover it")
    p.add_argument("--cases", default="cases", metavar="DIR", help="the folder of conformance cases (default: cases)")
    p.add_argument("--uncovered", action="store_true", help="list only requirements no case covers")
    p.add_argument("--json", action="store_true", help="the catalogue with coverage as JSON")
    p.set_defaults(func=cmd_requirements)

    p = sub.add_parser("runtimes", help="list the runtime definitions, their binaries and versions")
    p.set_defaults(func=cmd_runtimes)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    process_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, process_args = argv[:cut], argv[cut + 1 :]
    parser = build_parser()
    args = parser.parse_args(argv)
    if process_args and args.command != "bundle":
        parser.error("arguments after -- are only for `harness bundle` (the container's process)")
    args.process_args = process_args
    try:
        return args.func(args)
    except HarnessError as err:
        print(f"harness: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
