"""The spec text: sentence extraction, anchors, and where the folder comes from (a folder, the
environment, or the pinned release downloaded from a local server on 127.0.0.1)."""

import io
import os
import tarfile
from pathlib import Path

import pytest
from _http import FolderServer

from harness import spectext
from harness.spectext import SpecError

SPEC = os.environ.get(spectext.DIR_ENV)
needs_spec = pytest.mark.skipif(
    not SPEC or not Path(SPEC, "runtime.md").is_file(),
    reason=f"no spec folder: set ${spectext.DIR_ENV} to runtime-spec v1.3.0 (.ci/run does)",
)

DOC = """\
# <a name="top" />Top

Intro without keywords.
The runtime MUST do a thing, e.g. `this` one. It SHOULD also
do another thing across lines.

## Example

```json
{"x": "MUST be ignored"}
```

* **`field`** (string, REQUIRED) is a field.
    Its value MUST NOT be empty (see [the rules](#top)).
    * Nested: a `MUST` in code is no keyword, MAY is.

<!-- a MUST in a comment -->

## Example

 Option name | Requirement | Description
-------------|-------------|------------
 `a`         | MUST        | [^1]
 `b`         | SHOULD      | It MUST be so.
 header-like | no keyword  | here

[^1]: a footnote.
[link]: http://example.com MUST
"""


def test_extract_sentences_levels_sections_and_tables():
    got = [(s.section, s.level, s.text, s.table_row) for s in spectext.extract_text("x.md", DOC)]
    assert got == [
        ("top", "MUST", "The runtime MUST do a thing, e.g. `this` one.", False),
        ("top", "SHOULD", "It SHOULD also do another thing across lines.", False),
        ("example", "REQUIRED", "**`field`** (string, REQUIRED) is a field.", False),
        ("example", "MUST NOT", "Its value MUST NOT be empty (see [the rules](#top)).", False),
        ("example", "MAY", "Nested: a `MUST` in code is no keyword, MAY is.", False),
        ("example-1", "MUST", "`a`         | MUST        | [^1]", True),
        ("example-1", "SHOULD", "`b`         | SHOULD      | It MUST be so.", True),
    ]


def test_normalise_ignores_markdown_and_whitespace():
    n = spectext.normalise
    assert (
        n('**`field`** (string,  REQUIRED)\n is [a link](#x) and [ref][r] <a name="q" />_it_.')
        == "field (string, REQUIRED) is a link and ref it."
    )
    assert n(" `rrelatime  `    | SHOULD      | Recursive `relatime` [^3]") == n(
        "| `rrelatime` | SHOULD | Recursive `relatime` |"
    )
    assert n("CLONE_NEWNS and MS_PRIVATE") == "CLONE_NEWNS and MS_PRIVATE"
    assert spectext.digest(n("a  b")) == spectext.digest("a b") and len(spectext.digest("a b")) == 12


def test_heading_anchors_follow_github():
    text = '# <a name="x" />Linux mount options\n## Example (Windows)\n## Example\n## Example\n```\n# not\n```\n## POSIX-platform Hooks\n'
    assert [a for _, a in spectext.headings(text)] == [
        "linux-mount-options",
        "example-windows",
        "example",
        "example-1",
        "posix-platform-hooks",
    ]


@needs_spec
def test_pinned_spec_folder():
    folder = spectext.spec_dir(SPEC)
    assert spectext.differs_from_pin(folder) == []
    anchors = spectext.anchors(folder)
    assert "features-structure" in anchors["features.md"] and "features-document" not in anchors["features.md"]
    sentences = spectext.extract(folder)
    rows = [s for s in sentences if s.file == "config.md" and s.section == "linux-mount-options" and s.table_row]
    assert len(rows) == 61 and {s.level for s in rows} == {"MUST", "SHOULD", "MAY"}
    assert any(
        s.norm == "If any poststart hook fails, the runtime MUST generate an error, stop the container, "
        "and continue the lifecycle at step 12."
        for s in sentences
    )


# -- where the folder comes from ------------------------------------------------------------------


def test_folder_argument_and_env(tmp_path, monkeypatch):
    monkeypatch.delenv(spectext.DIR_ENV, raising=False)
    for name in spectext.DOCUMENTS:
        (tmp_path / name).write_text("# T\n")
    assert spectext.spec_dir(tmp_path) == tmp_path
    monkeypatch.setenv(spectext.DIR_ENV, str(tmp_path))
    assert spectext.spec_dir() == tmp_path
    (tmp_path / "bundle.md").unlink()
    with pytest.raises(SpecError, match=r"HARNESS_SPEC_DIR.*lacks bundle.md.*--spec DIR"):
        spectext.spec_dir()
    with pytest.raises(SpecError, match="no such spec folder"):
        spectext.spec_dir(tmp_path / "nope")


class Server(FolderServer):
    """An HTTP server on 127.0.0.1 serving one archive, ``data``, at ``url`` (from ``folder``)."""

    def __init__(self, folder: Path, data: bytes) -> None:
        folder.mkdir()
        (folder / "v1.3.0.tar.gz").write_bytes(data)
        super().__init__(folder)
        self.url += "/v1.3.0.tar.gz"


def archive(folder: Path, tamper: str | None = None) -> bytes:
    """A GitHub-like tag archive (one top folder) of the pinned files in ``folder``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in spectext.PINNED:
            body = (folder / name).read_bytes()
            if name == tamper:
                body += b"\nThe runtime MUST NOT trust this.\n"
            info = tarfile.TarInfo(f"runtime-spec-1.3.0/{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(spectext.DIR_ENV, raising=False)
    monkeypatch.delenv(spectext.URL_ENV, raising=False)


@needs_spec
def test_download_checks_pins_and_caches(tmp_path, no_env, monkeypatch):
    server = Server(tmp_path / "served", archive(Path(SPEC)))
    try:
        monkeypatch.setenv(spectext.URL_ENV, server.url)
        cache = tmp_path / "cache"
        got = spectext.spec_dir(cache=cache)
        assert got == cache / "runtime-spec-v1.3.0" and spectext.differs_from_pin(got) == []
        assert (got / "schema" / "config-schema.json").is_file()
        assert spectext.spec_dir(cache=cache) == got and len(server.requests) == 1  # cached
        # a cached copy that changed is downloaded again
        (got / "runtime.md").write_text("# changed\n")
        assert spectext.spec_dir(cache=cache) == got and len(server.requests) == 2
        assert spectext.differs_from_pin(got) == []
        assert [p.name for p in cache.iterdir()] == ["runtime-spec-v1.3.0"]
    finally:
        server.close()


@needs_spec
def test_download_that_differs_from_the_pin_leaves_nothing(tmp_path, no_env):
    server = Server(tmp_path / "served", archive(Path(SPEC), tamper="runtime.md"))
    try:
        cache = tmp_path / "cache"
        with pytest.raises(
            SpecError,
            match=r"not runtime-spec v1.3.0 as pinned \(sha256 mismatch for runtime.md\).*--spec DIR.*HARNESS_SPEC_DIR",
        ):
            spectext.spec_dir(cache=cache, url=server.url)
        assert list(cache.iterdir()) == []
    finally:
        server.close()


def test_not_an_archive_and_404(tmp_path, no_env):
    server = Server(tmp_path / "served", b"<html>not a tarball</html>")
    try:
        with pytest.raises(SpecError, match="not a readable tar archive"):
            spectext.spec_dir(cache=tmp_path / "c", url=server.url)
        with pytest.raises(SpecError, match="HTTP 404"):
            spectext.spec_dir(cache=tmp_path / "c", url=server.url.replace("v1.3.0", "nope"))
    finally:
        server.close()
    assert not (tmp_path / "c" / "runtime-spec-v1.3.0").exists()


def test_offline_without_a_folder_is_one_clear_error(tmp_path, no_env):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SpecError) as err:
        spectext.spec_dir(cache=tmp_path / "c", url=f"http://127.0.0.1:{port}/v1.3.0.tar.gz", timeout=5)
    msg = str(err.value)
    assert "cannot download" in msg and "--spec DIR" in msg and "HARNESS_SPEC_DIR" in msg and "\n" not in msg


def test_a_line_ending_in_a_parenthesis_ends_its_sentence():
    text = (
        "* **`quota`** *(int64, OPTIONAL)* - the time (as defined by **`period`** below)\n"
        "    If specified, it MUST be no smaller than `burst` (runtimes MAY refuse it).\n"
        "* **`x`** (string, OPTIONAL) is the name of the\n    Ethernet card (e.g. `eth0`) it MUST use.\n"
    )
    assert [s.text for s in spectext.extract_text("x.md", text, every=True)] == [
        "**`quota`** *(int64, OPTIONAL)* - the time (as defined by **`period`** below)",
        "If specified, it MUST be no smaller than `burst` (runtimes MAY refuse it).",
        "**`x`** (string, OPTIONAL) is the name of the Ethernet card (e.g. `eth0`) it MUST use.",
    ]
