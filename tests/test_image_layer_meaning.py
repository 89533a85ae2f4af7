"""`harness image build --layer DIR` adds what DIR holds (as a Dockerfile COPY does); `--tree DIR`
makes the image exactly DIR (whiteouts for the rest). Read back from the layer archives."""

import gzip
import json
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def harness(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def layer_members(layout: Path, tag: str) -> list[list[tarfile.TarInfo]]:
    index = json.loads((layout / "index.json").read_text())
    desc = next(
        m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    )
    manifest = json.loads((layout / "blobs" / "sha256" / desc["digest"].split(":")[1]).read_text())
    out = []
    for layer in manifest["layers"]:
        blob = layout / "blobs" / "sha256" / layer["digest"].split(":")[1]
        opener = gzip.open if layer["mediaType"].endswith("gzip") else open
        with opener(blob, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as tf:
            out.append(list(tf))
    return out


def names(members):
    return sorted(m.name.rstrip("/") for m in members)


def make(folder: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return folder


def test_layer_adds_and_tree_replaces(tmp_path):
    base = make(tmp_path / "base", {"etc/hostname": "base", "etc/os-release": "x", "bin/sh": "#!"})
    (tmp_path / "base" / "etc").chmod(0o750)
    changes = make(tmp_path / "changes", {"etc/motd": "hello", "etc/hostname": "changed"})
    layout = tmp_path / "img"
    done = harness("image", "build", f"{layout}:copy", "--base", str(base), "--layer", str(changes))
    assert done.returncode == 0, done.stderr
    base_layer, added = layer_members(layout, "copy")
    assert names(base_layer) == ["bin", "bin/sh", "etc", "etc/hostname", "etc/os-release"]
    # the layer holds what the folder adds or changes, and nothing is whited out
    assert [n for n in names(added) if n != "etc"] == ["etc/hostname", "etc/motd"]
    assert not any(".wh." in m.name for m in added)
    # a folder the image has keeps its mode (the base's 0750, not the changes folder's)
    etc = [m for m in added if m.name.rstrip("/") == "etc"]
    assert all(m.mode & 0o777 == 0o750 for m in etc)

    done = harness("image", "build", f"{layout}:tree", "--base", str(base), "--tree", str(changes))
    assert done.returncode == 0, done.stderr
    _, tree = layer_members(layout, "tree")
    # the whole-tree diff: everything of the image the folder lacks becomes a whiteout
    assert {"bin/.wh.sh", "etc/.wh.os-release"} <= set(names(tree)) or ".wh.bin" in " ".join(names(tree))
    assert "etc/.wh.os-release" in names(tree)


def test_help_explains_layer_and_tree():
    done = harness("image", "build", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "COPY DIR /" in text and "nothing is removed" in text and "--tree DIR" in text
