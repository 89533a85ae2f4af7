"""The ``harness`` command line.

Each subcommand is a plain function taking the parsed arguments and returning an exit code;
errors the user can act on are :class:`~harness.errors.HarnessError` and are printed as one
message, never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from .errors import HarnessError

#: The runtime `harness run` uses when neither --runtime nor $HARNESS_RUNTIME names one: the
#: bundled one, which needs nothing installed (as for `pytest cases` and nox).
DEFAULT_RUNTIME = "reference"


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
    from .bundle import create_bundle, remove_bundle

    if args.remove:
        remove_bundle(Path(args.dir))
        return 0
    if args.mode and not args.image:
        raise HarnessError("--mode goes with --image (a raw or overlay bundle from an OCI image)")
    rootfs_tar = Path(args.rootfs_tar) if args.rootfs_tar else None
    if args.rootfs == "alpine" and not args.image:
        from . import rootfs as _rootfs

        rootfs_tar = _rootfs.alpine_tarball(rootfs_tar)  # first: offline, fail before making anything
    bundle = create_bundle(
        Path(args.dir),
        rootfs=args.rootfs,
        rootfs_tar=rootfs_tar,
        hostname=args.hostname,
        args=args.process_args or None,
        readonly=not args.writable,
        install_probe=not args.no_probe,
        image=args.image,
        mode=args.mode or "raw",
    )
    print(bundle.path)
    return 0


def _image_ref(text: str) -> tuple[Path, str | None]:
    from .image import parse_reference

    return parse_reference(text)


def cmd_image_build(args: argparse.Namespace) -> int:
    import json

    from .image import ImageBuilder, Layout

    path, tag = _image_ref(args.ref)
    rootfs_tar = Path(args.rootfs_tar) if args.rootfs_tar else None
    if not args.from_image and str(args.base) == "alpine":
        from . import rootfs as _rootfs

        rootfs_tar = _rootfs.alpine_tarball(rootfs_tar)  # first: offline, fail before making anything
    layout = Layout.init(path)
    builder = ImageBuilder(layout, compress=not args.no_gzip)
    if args.from_image:
        builder.from_image(layout.resolve(args.from_image))
    else:
        builder.base(args.base, rootfs_tar=rootfs_tar)
    for kind, value in args.layers or []:
        if kind == "folder":
            builder.add_folder(Path(value))
        elif kind == "tree":
            builder.add_tree(Path(value))
        else:
            try:
                changes = json.loads(Path(value).read_text())
            except (OSError, ValueError) as err:
                raise HarnessError(f"cannot read the changes file {value}: {err}") from None
            if not isinstance(changes, list):
                raise HarnessError(f"{value}: a changes file holds a JSON list of changes")
            builder.add_changes(changes, created_by=f"changes {Path(value).name}")
    cfg = builder.config
    if args.env:
        cfg["Env"] = [
            e for e in cfg.get("Env", []) if e.split("=", 1)[0] not in {x.split("=", 1)[0] for x in args.env}
        ] + args.env
    for key, value in (("Entrypoint", args.entrypoint), ("Cmd", args.cmd)):
        if value is not None:
            cfg[key] = json.loads(value) if value.startswith("[") else value.split()
    if args.workdir is not None:
        cfg["WorkingDir"] = args.workdir
    if args.user is not None:
        cfg["User"] = args.user
    labels = dict(kv.split("=", 1) for kv in args.label or [] if "=" in kv)
    image = builder.commit(tag, labels=labels or None)
    print(f"{path}:{tag}" if tag else f"{path}@{image.digest}")
    return 0


def cmd_image_generate(args: argparse.Namespace) -> int:
    from .image import Layout, generate_image

    path, tag = _image_ref(args.ref)
    if tag is None:
        raise HarnessError("name the image as LAYOUT:TAG")
    size: int | tuple[int, int] = args.size
    if args.max_size:
        size = (args.size, args.max_size)
    image = generate_image(
        Layout.init(path),
        tag,
        layers=args.layers,
        files=args.files,
        size=size,
        seed=args.seed,
        base=args.base,
        rootfs_tar=Path(args.rootfs_tar) if args.rootfs_tar else None,
        churn=not args.no_churn,
        compress=not args.no_gzip,
    )
    print(f"{path}:{tag} {image.digest}")
    return 0


def cmd_image_ls(args: argparse.Namespace) -> int:
    from .image import Layout

    layout = Layout.open(args.layout)
    rows = [("TAG", "DIGEST", "LAYERS", "SIZE")]
    for tag, desc in layout.images():
        try:
            image = layout.load_image(desc)
            layers, size = str(len(image.layers)), str(sum(d.size for d in image.layers))
        except HarnessError as err:
            layers, size = "?", f"({err})"
        rows.append((tag or "<none>", desc.digest[:19], layers, size))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}")
    return 0


def cmd_image_inspect(args: argparse.Namespace) -> int:
    import json

    from .image import Layout

    path, tag = _image_ref(args.ref)
    image = Layout.open(path).resolve(tag)
    out = {
        "ref": image.ref,
        "digest": image.digest,
        "config_digest": image.config_desc.digest,
        "layers": [
            {"digest": d.digest, "size": d.size, "mediaType": d.media_type, "diff_id": i}
            for d, i in zip(image.layers, image.diff_ids, strict=False)
        ],
        "config": image.config.get("config") or {},
        "architecture": image.config.get("architecture"),
        "os": image.config.get("os"),
    }
    print(json.dumps(out, indent=2))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from . import runtime

    bundle = Path(args.bundle)
    if not bundle.is_dir():
        raise HarnessError(f"{bundle}: no such bundle folder")
    from .bundle import Bundle, check_runnable

    check_runnable(Bundle(bundle))
    definition = runtime.resolve(args.runtime)
    container_id = args.id or f"harness-run-{uuid.uuid4().hex[:12]}"
    # The session adopts the container's init once `create` returns (its exit status is ours
    # to read), journals the container and removes its state root at the end.
    with (
        tempfile.TemporaryDirectory(prefix="harness-run-") as tmp,
        runtime.open_session(f"run-{os.getpid()}-{uuid.uuid4().hex[:8]}") as session,
    ):
        rt = session.runtime(definition, timeout=args.timeout)
        container = runtime.Container(rt, container_id, bundle, Path(tmp))
        interrupted = False

        def on_signal(signum: int, _frame: object) -> None:
            raise KeyboardInterrupt

        old = signal.signal(signal.SIGTERM, on_signal)
        try:
            container.create(stdin=None if args.stdin else subprocess.DEVNULL)
            container.start()
            end = container.wait(timeout=args.wait_timeout, stream=(sys.stdout.buffer, sys.stderr.buffer))
        except KeyboardInterrupt:
            interrupted = True
            end = runtime.Exit(signal=signal.SIGINT)
        finally:
            signal.signal(signal.SIGTERM, old)
            container.cleanup()
        if interrupted:
            print(f"harness: interrupted; container {container_id} removed", file=sys.stderr)
            return 130
        if end.shell_code is None:
            print(
                f"harness: {rt.name} did not let the harness see the exit status of container {container_id}",
                file=sys.stderr,
            )
            return 0
        return end.shell_code


def cmd_runtimes(args: argparse.Namespace) -> int:
    from . import runtime

    defs = runtime.load_definitions()
    rows = [("NAME", "BINARY", "VERSION", "DESCRIPTION")]
    for name, d in defs.items():
        path = d.find_binary()
        version = d.version() if path else ""
        hint = f"not installed (apt-get install {d.debian_package})" if d.debian_package else "not installed"
        rows.append((name, path or hint, version or "-", d.description))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip())
    return 0


def cmd_requirements(args: argparse.Namespace) -> int:
    import json

    from . import requirements

    if args.audit is not None:
        return _requirements_audit(args)
    rows = requirements.coverage(requirements.collect_cases(Path(args.cases)))
    if args.json:
        print(json.dumps([{**r.requirement.__dict__, "status": r.status, "cases": r.cases} for r in rows], indent=2))
        return 0
    shown = [r for r in rows if not args.uncovered or not r.cases]
    width = max((len(r.requirement.id) for r in shown), default=10)
    for r in shown:
        req = r.requirement
        where = (
            ", ".join(c.split("/")[-1] for c in r.cases)
            if r.cases
            else (f"not testable: {req.why}" if not req.testable else "NOT COVERED")
        )
        print(f"{req.id:<{width}}  {req.level:<10}  {req.anchor:<40}  {where}")
    print()
    print("Totals: covered/total (not testable on this kind of host)")
    per_file: dict[str, dict[str, tuple[int, int, int]]] = {}
    for (file, strength), counts in requirements.totals(rows).items():
        per_file.setdefault(file, {})[strength] = counts
    for file, levels in per_file.items():
        cells = "   ".join(
            f"{lvl}: {levels[lvl][0]}/{levels[lvl][1]}" + (f" ({levels[lvl][2]})" if levels[lvl][2] else "")
            for lvl in ("MUST", "SHOULD", "MAY")
            if lvl in levels
        )
        print(f"  {file:<18} {cells}")
    covered = sum(1 for r in rows if r.cases)
    untestable = sum(1 for r in rows if not r.cases and not r.requirement.testable)
    print(
        f"  {'all':<18} {covered}/{len(rows)} requirements covered, {untestable} not testable here, {len(rows) - covered - untestable} not covered"
    )
    return 0


def _requirements_audit(args: argparse.Namespace) -> int:
    """``harness requirements --audit``: the catalogue joined to the spec's sentences; exit 1
    when a runtime-constraining MUST/SHOULD sentence has no entry, an entry's sentence is not in
    the spec, an entry has no sentence or an anchor is no heading."""
    import json

    from . import requirements, spectext
    from .requirements import audit as audit_mod

    if args.audit and args.spec and Path(args.audit) != Path(args.spec):
        raise HarnessError(f"two spec folders given ({args.audit} and --spec {args.spec}); give one")
    folder = spectext.spec_dir(args.audit or args.spec or None)
    result = audit_mod.audit(folder, requirements.collect_cases(Path(args.cases)))
    if args.json:
        print(
            json.dumps(
                {
                    "spec": str(folder),
                    "differs_from_pinned": result.differs_from_pin,
                    "totals": [{"file": f, "level": lvl, **cell} for (f, lvl), cell in result.totals().items()],
                    "sentences": [
                        {
                            "file": r.sentence.file,
                            "section": r.sentence.section,
                            "line": r.sentence.line,
                            "level": r.sentence.level,
                            "digest": r.sentence.digest,
                            "text": r.sentence.text,
                            "applies_to": r.applies_to,
                            "status": r.status,
                            "requirements": [q.id for q in r.requirements],
                            "cases": r.cases,
                            "why": r.why_not_testable,
                        }
                        for r in result.rows
                    ],
                    "unmatched": [u.__dict__ for u in result.unmatched],
                    "no_sentence": [r.id for r in result.no_sentence],
                    "bad_anchors": [{"who": w, "anchor": a} for w, a in result.bad_anchors],
                    "wrong_section": [
                        {"who": w, "anchor": a, "sentence_anchor": b} for w, a, b in result.wrong_section
                    ],
                },
                indent=2,
            )
        )
        return 0 if result.clean else 1
    pin = (
        ("the pinned v" + spectext.SPEC_VERSION)
        if not result.differs_from_pin
        else (f"differs from the pinned v{spectext.SPEC_VERSION} in {len(result.differs_from_pin)} file(s)")
    )
    print(f"spec: {folder} ({pin})")
    print()
    print(audit_mod.format_table(result))
    print(
        "  runtime: sentences that constrain the runtime (the rest are marked config-author, hook, other platforms...)"
    )
    print("  missing: runtime sentences no catalogue entry stands for")

    def show(title: str, lines: list[str]) -> None:
        if lines:
            print(f"\n{title} ({len(lines)}):")
            for line in lines:
                print(f"  {line}")

    show(
        "runtime MUST/SHOULD sentences with no catalogue entry",
        [f"{r.sentence.anchor} [{r.sentence.level}] {r.sentence.digest}: {r.sentence.text}" for r in result.missing()],
    )
    show(
        "catalogue sentences not found in the spec (changed or mistyped)",
        [f"{u.who} ({u.file}#{u.section}): {u.sentence}" for u in result.unmatched],
    )
    show("catalogue entries without a sentence", [f"{r.id} ({r.anchor})" for r in result.no_sentence])
    show("catalogue anchors that are no heading of the spec", [f"{w}: {a}" for w, a in result.bad_anchors])
    show(
        "catalogue entries whose sentence is under another heading",
        [f"{w}: {a} (the sentence is in {b})" for w, a, b in result.wrong_section],
    )
    show(
        "runtime sentences marked not testable, and why",
        [
            f"{r.sentence.anchor} [{r.sentence.level}] {', '.join(q.id for q in r.requirements)}: {r.why_not_testable}"
            for r in result.rows
            if r.status == "not testable"
        ],
    )
    if args.verbose:
        show(
            "every sentence",
            [f"{r.sentence.anchor} [{r.sentence.level}] {r.status}: {r.sentence.text}" for r in result.rows],
        )
    return 0 if result.clean else 1


def cmd_diff(args: argparse.Namespace) -> int:
    import json

    from . import diff, runtime

    names = [n for n in args.runtime.split(",") if n]
    if len(names) != 2:
        raise HarnessError(f"--runtime needs exactly two runtimes, like runc,crun (got {args.runtime!r})")
    variants = diff.VARIANTS
    if args.variant:
        unknown = sorted(set(args.variant) - set(variants))
        if unknown:
            raise HarnessError(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(variants)}")
        variants = {v: diff.VARIANTS[v] for v in args.variant}
    with (
        runtime.open_session(f"diff-{os.getpid()}-{uuid.uuid4().hex[:8]}") as session,
        tempfile.TemporaryDirectory(prefix="harness-diff-") as tmp,
    ):
        rts = [session.runtime(n) for n in names]
        found = diff.compare(rts, Path(tmp), variants)
    if args.json:
        print(json.dumps({v: [d.__dict__ for d in ds] for v, ds in found.items()}, indent=2))
    else:
        for variant, ds in found.items():
            print(f"{variant}: {'same' if not ds else f'{len(ds)} difference(s)'}")
            for d in ds:
                print(f"  {d.path}\n    {rts[0].name}: {json.dumps(d.a)}\n    {rts[1].name}: {json.dumps(d.b)}")
    return 1 if any(found.values()) else 0


def cmd_cleanup(args: argparse.Namespace) -> int:
    from . import journal

    report = journal.cleanup(dry_run=args.dry_run, include_live=args.force)
    for line in report.removed:
        print(("" if args.dry_run else "removed ") + line)
    for line in report.skipped:
        print(f"left alone: {line} (use --force to clean it anyway)")
    for line in report.errors:
        print(f"harness: could not remove {line}", file=sys.stderr)
    if not (report.removed or report.skipped or report.errors):
        print("nothing to clean up")
    return 1 if report.errors else 0


class _Help(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples keep their line breaks; option help is wrapped."""


def _command(
    sub: argparse._SubParsersAction, name: str, summary: str, description: str, examples: str, **kw
) -> argparse.ArgumentParser:
    """A subcommand with a one-line summary (in ``harness --help``), a description and examples."""
    return sub.add_parser(
        name,
        help=summary,
        description=f"{summary[0].upper()}{summary[1:]}.\n\n{description}".rstrip(),
        epilog="examples:\n" + examples.strip("\n"),
        formatter_class=_Help,
        **kw,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        formatter_class=_Help,
        description="OCI runtime-spec conformance and benchmarking harness.\n\n"
        "Run `harness COMMAND --help` for a command's options and examples. The default runtime\n"
        "everywhere is the bundled `reference` (needs nothing installed); $HARNESS_RUNTIME changes it.",
        epilog="examples:\n"
        "  harness bundle b --rootfs probe --hostname HAL-9000 && harness run b\n"
        "  harness runtimes\n"
        "  harness report results/conformance -o report.html",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _command(
        sub,
        "spec",
        "write a default config.json (the content `runc spec` gives)",
        "Writes BUNDLE/config.json; never overwrites one.",
        "  harness spec --bundle mybundle\n  harness spec --rootless --bundle mybundle",
    )
    p.add_argument("--rootless", action="store_true", help="a config for a rootless container (user namespace)")
    p.add_argument(
        "--bundle", "-b", default=".", metavar="DIR", help="the bundle folder to write config.json into (default: .)"
    )
    p.set_defaults(func=cmd_spec)

    p = _command(
        sub,
        "bundle",
        "make a bundle: config.json and a root filesystem",
        "DIR must be new or empty. The probe is installed at /probe unless --no-probe. Words after --\n"
        "are the container's process (default: the probe's report).",
        "  harness bundle b --rootfs probe --hostname HAL-9000\n"
        "  harness bundle a --rootfs alpine -- /bin/sh -c 'cat /etc/alpine-release'\n"
        "  harness bundle o --image img:v1 --mode overlay\n"
        "  harness bundle o --remove",
        usage="harness bundle DIR [--rootfs SOURCE | --image LAYOUT[:TAG]] [options] [-- ARGS...]",
    )
    p.add_argument("dir", metavar="DIR", help="the bundle folder to create (new or empty)")
    p.add_argument(
        "--rootfs",
        default="probe",
        metavar="SOURCE",
        help="probe (default: only the probe), alpine (downloaded once, checked), or the path of a folder or tarball",
    )
    p.add_argument(
        "--rootfs-tar",
        metavar="PATH",
        help="with --rootfs alpine: use this local minirootfs tarball instead of downloading it (default: $HARNESS_ROOTFS_TAR)",
    )
    p.add_argument("--hostname", metavar="NAME", help="the container's hostname, e.g. HAL-9000")
    p.add_argument(
        "--writable", action="store_true", help="a writable root filesystem (default: read-only, like runc spec)"
    )
    p.add_argument("--no-probe", action="store_true", help="do not install the probe at /probe")
    p.add_argument(
        "--image", metavar="LAYOUT[:TAG]", help="make the root filesystem from an OCI image layout, e.g. img:v1"
    )
    p.add_argument(
        "--mode",
        choices=("raw", "overlay"),
        help="with --image: flatten the layers (raw, default) or mount them with overlayfs",
    )
    p.add_argument("--remove", action="store_true", help="unmount and remove the bundle DIR instead of making one")
    p.set_defaults(func=cmd_bundle)

    p = _command(
        sub,
        "image",
        "OCI images: build, generate, list, inspect",
        "An image lives in an OCI image layout folder; LAYOUT:TAG names one image in it.",
        "  harness image build img:v1 --base alpine --layer ./my-changes\n  harness image ls img\n  harness image build --help",
    )
    isub = p.add_subparsers(dest="image_command", required=True, metavar="SUBCOMMAND")

    class _Layer(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            kind = {"--layer": "folder", "--tree": "tree"}.get(option_string or "", "changes")
            items = getattr(namespace, "layers", None) or []
            namespace.layers = [*items, (kind, values)]

    q = _command(
        isub,
        "build",
        "build an image into a layout: a base plus layers",
        "Layers are added in the order given. --layer DIR adds what DIR holds on top of the image so\n"
        "far, as a Dockerfile `COPY DIR /` does: new files are added, files at the same paths are\n"
        "replaced, folders the image has keep their mode and owner, nothing is removed. To remove\n"
        "files, use --changes (a delete change) or --tree DIR, which takes DIR as the whole new root\n"
        "filesystem and stores a whiteout for everything of the image DIR lacks.",
        "  mkdir -p my-changes/etc && echo hi > my-changes/etc/motd\n"
        "  harness image build img:v1 --base alpine --layer ./my-changes     # alpine + /etc/motd\n"
        "  harness image build img:v2 --from v1 --changes delete-motd.json --cmd '/bin/cat /etc/os-release'\n"
        "  harness image build img:v3 --base alpine --tree ./full-rootfs      # alpine -> exactly ./full-rootfs",
        usage="harness image build LAYOUT:TAG [--base SOURCE | --from TAG] [--layer DIR | --tree DIR | --changes FILE]...",
    )
    q.add_argument("ref", metavar="LAYOUT:TAG", help="the layout folder (made if new) and the tag to give the image")
    q.add_argument(
        "--base",
        default="alpine",
        metavar="SOURCE",
        help="alpine (default), scratch, a tarball or a folder (taken whole)",
    )
    q.add_argument(
        "--rootfs-tar",
        metavar="PATH",
        help="with --base alpine: a local minirootfs tarball (default: $HARNESS_ROOTFS_TAR)",
    )
    q.add_argument(
        "--from", dest="from_image", metavar="TAG", help="start from the image TAG of the same layout instead of --base"
    )
    q.add_argument(
        "--layer",
        action=_Layer,
        dest="layers",
        metavar="DIR",
        help="a layer of what DIR adds or changes (like COPY DIR /; nothing is removed; repeatable)",
    )
    q.add_argument(
        "--tree",
        action=_Layer,
        dest="layers",
        metavar="DIR",
        help="a layer that makes the image exactly DIR: whiteouts for what DIR lacks (repeatable)",
    )
    q.add_argument(
        "--changes",
        action=_Layer,
        dest="layers",
        metavar="FILE",
        help='a layer from a JSON list of changes, e.g. [{"op": "delete", "path": "/etc/motd"}] (file, dir, symlink, hardlink, delete, opaque...; repeatable)',
    )
    q.add_argument(
        "--env", action="append", metavar="K=V", help="set an environment variable in the image config (repeatable)"
    )
    q.add_argument("--entrypoint", metavar="CMD", help="the Entrypoint (a JSON list or words)")
    q.add_argument("--cmd", metavar="CMD", help='the Cmd (a JSON list or words), e.g. \'["/bin/sh", "-c", "date"]\'')
    q.add_argument("--workdir", metavar="DIR", help="the WorkingDir")
    q.add_argument("--user", metavar="USER[:GROUP]", help="the User (numeric, or names from the image's /etc/passwd)")
    q.add_argument("--label", action="append", metavar="K=V", help="a label (becomes a bundle annotation; repeatable)")
    q.add_argument("--no-gzip", action="store_true", help="store new layers as plain tar")
    q.set_defaults(func=cmd_image_build)

    q = _command(
        isub,
        "generate",
        "a reproducible benchmark image: N layers of M files",
        "Same arguments and seed, same image (same digests). With churn, layers also delete,\n"
        "overwrite and make opaque folders.",
        "  harness image generate bench:deep --layers 64 --files 8\n"
        "  harness image generate bench:big --layers 4 --size 4096 --max-size 1048576 --seed 7",
    )
    q.add_argument("ref", metavar="LAYOUT:TAG", help="the layout folder (made if new) and the tag")
    q.add_argument("--layers", type=int, default=8, metavar="N", help="number of layers (default: 8)")
    q.add_argument("--files", type=int, default=16, metavar="M", help="files per layer (default: 16)")
    q.add_argument(
        "--size", type=int, default=4096, metavar="BYTES", help="file size (the minimum with --max-size; default: 4096)"
    )
    q.add_argument("--max-size", type=int, metavar="BYTES", help="draw sizes between --size and this")
    q.add_argument("--seed", type=int, default=0, help="seed of the generated content (default: 0)")
    q.add_argument(
        "--base", default="scratch", metavar="SOURCE", help="scratch (default), alpine, a tarball or a folder"
    )
    q.add_argument(
        "--rootfs-tar",
        metavar="PATH",
        help="with --base alpine: a local minirootfs tarball (default: $HARNESS_ROOTFS_TAR)",
    )
    q.add_argument("--no-churn", action="store_true", help="no deletions, overwrites or opaque folders")
    q.add_argument("--no-gzip", action="store_true", help="store layers as plain tar")
    q.set_defaults(func=cmd_image_generate)

    q = _command(
        isub,
        "ls",
        "list the images of a layout",
        "One line per image: tag, digest, layers and size.",
        "  harness image ls img",
    )
    q.add_argument("layout", metavar="LAYOUT", help="the image layout folder")
    q.set_defaults(func=cmd_image_ls)

    q = _command(
        isub, "inspect", "print an image's manifest summary and config as JSON", "", "  harness image inspect img:v1"
    )
    q.add_argument("ref", metavar="LAYOUT[:TAG]", help="the image (LAYOUT alone: its only image)")
    q.set_defaults(func=cmd_image_inspect)

    p = _command(
        sub,
        "run",
        "create, start and wait for a container, then delete it; exits with its exit code",
        "The container's stdout and stderr are streamed; Ctrl-C removes the container.",
        "  harness run b                    # on the bundled reference runtime\n"
        "  harness run b --runtime runc\n"
        "  harness run b --runtime /usr/local/bin/crun --stdin",
    )
    p.add_argument("bundle", metavar="BUNDLE", help="the bundle folder (from harness bundle)")
    p.add_argument(
        "--runtime",
        "-r",
        default=os.environ.get("HARNESS_RUNTIME", DEFAULT_RUNTIME),
        metavar="NAME|PATH",
        help="a runtime name from runtimes/*.toml or a binary path (default: %(default)s)",
    )
    p.add_argument("--id", help="container id (default: a fresh unique one)")
    p.add_argument("--timeout", type=float, default=None, metavar="S", help="timeout of each runtime call, in seconds")
    p.add_argument(
        "--wait-timeout",
        type=float,
        default=3600.0,
        metavar="S",
        help="how long to wait for the container to exit (default: 3600)",
    )
    p.add_argument(
        "--stdin", action="store_true", help="pass this process's stdin to the container (default: /dev/null)"
    )
    p.set_defaults(func=cmd_run)

    p = _command(
        sub,
        "requirements",
        "the spec requirement catalogue and which cases cover it",
        "Per requirement: id, RFC 2119 level, spec anchor and the cases naming it; then totals.\n"
        "With --audit: the catalogue against every RFC 2119 sentence of the spec text.",
        "  harness requirements\n  harness requirements --uncovered\n  harness requirements --json > catalogue.json\n"
        "  harness requirements --audit /path/to/runtime-spec-v1.3.0",
    )
    p.add_argument("--cases", default="cases", metavar="DIR", help="the folder of conformance cases (default: cases)")
    p.add_argument("--uncovered", action="store_true", help="list only requirements no case covers")
    p.add_argument("--json", action="store_true", help="the catalogue with coverage as JSON")
    p.add_argument(
        "--audit",
        nargs="?",
        const="",
        default=None,
        metavar="SPEC_DIR",
        help="check the catalogue against every RFC 2119 sentence of the spec text (the folder: SPEC_DIR, "
        "--spec, $HARNESS_SPEC_DIR, else runtime-spec v1.3.0 downloaded once and cached); exit 1 when "
        "a runtime MUST/SHOULD sentence has no entry or an entry does not match the spec",
    )
    p.add_argument("--spec", metavar="DIR", help="the spec folder for --audit")
    p.add_argument("--verbose", "-v", action="store_true", help="with --audit: also every sentence and its status")
    p.set_defaults(func=cmd_requirements)

    p = _command(
        sub,
        "diff",
        "run the same bundles on two runtimes and show where what the containers saw differs",
        "Exit code 1 when anything differs (after normalising what the spec leaves open).",
        "  harness diff --runtime runc,crun\n  harness diff --runtime reference,runc --variant default --json",
    )
    p.add_argument("--runtime", "-r", required=True, metavar="A,B", help="the two runtimes to compare, e.g. runc,crun")
    p.add_argument("--variant", action="append", metavar="NAME", help="compare only these bundle variants (repeatable)")
    p.add_argument("--json", action="store_true", help="the differences as JSON")
    p.set_defaults(func=cmd_diff)

    p = _command(
        sub,
        "cleanup",
        "remove what killed runs left behind (containers, processes, mounts, state), from their journals",
        "Only what a run journaled is touched; runs still going are left alone unless --force.",
        "  harness cleanup --dry-run\n  harness cleanup",
    )
    p.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    p.add_argument("--force", action="store_true", help="also clean up after runs that are still going")
    p.set_defaults(func=cmd_cleanup)

    p = _command(
        sub,
        "runtimes",
        "list the runtime definitions, their binaries and versions",
        "Definitions come from runtimes/*.toml (or $HARNESS_RUNTIMES_DIR).",
        "  harness runtimes",
    )
    p.set_defaults(func=cmd_runtimes)
    from .bench._cli import register as register_bench

    register_bench(sub)
    from .report._cli import register as register_report

    register_report(sub)
    from .matrix._cli import register as register_matrix

    register_matrix(sub)
    from .mutants import register as register_mutants

    register_mutants(sub)
    _describe(
        sub.choices["mutants"],
        "Each mutant breaks one spec sentence in a copy of the bundled runtime; the cases naming its\n"
        "requirements run against it, and a mutant no case notices 'survived'. Results go to --output.",
        "  harness mutants --list\n  harness mutants --only seccomp --fast\n  harness mutants --sample 10 --seed 2026-W48 --fast",
    )
    return parser


def _describe(parser: argparse.ArgumentParser, description: str, examples: str) -> None:
    """Give a subcommand registered elsewhere a description and examples, if it has none."""
    parser.formatter_class = _Help
    if not parser.description:
        parser.description = description
    if not parser.epilog:
        parser.epilog = "examples:\n" + examples


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
    except PermissionError as err:
        who = "root" if os.geteuid() != 0 else "its owner"
        print(
            f"harness: {err.filename or 'a file'}: permission denied for uid {os.geteuid()} ({err.strerror}); run as {who}, or give a path this user can reach",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
