"""The text of the OCI runtime spec: where it comes from, and its RFC 2119 sentences.

Where (:func:`spec_dir`): a folder given on the command line (``--spec DIR``), else the folder
in ``$HARNESS_SPEC_DIR``, else the tagged release v1.3.0 downloaded once from GitHub, checked
and cached under the harness's cache folder (as :mod:`harness.rootfs` does for Alpine).

GitHub makes its release archives on the fly and does not promise their bytes, so the pin is on
the content: the sha256 of every file of the tag the harness reads (:data:`PINNED`, taken from
the git objects of tag v1.3.0). A download whose files do not match is refused and leaves
nothing in the cache; a cached copy is checked again on every use.

What (:func:`extract`): every sentence with an RFC 2119 keyword (uppercase MUST, MUST NOT,
REQUIRED, SHALL, SHALL NOT, SHOULD, SHOULD NOT, RECOMMENDED, NOT RECOMMENDED, MAY, OPTIONAL) of the Markdown
documents, outside code blocks, each with its document, the GitHub anchor of its section, its
level and a digest of its normalised text. A table row holding a keyword counts as one sentence
(so does each row of config.md's Linux mount options table, whose level is its Requirement
column). :func:`normalise` is what the catalogue is joined on: whitespace, Markdown emphasis,
links, inline HTML and backticks do not count.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness import download
from harness._paths import cache_dir
from harness.errors import HarnessError

log = logging.getLogger(__name__)

SPEC_VERSION = "1.3.0"
SPEC_URL = f"https://github.com/opencontainers/runtime-spec/archive/refs/tags/v{SPEC_VERSION}.tar.gz"
#: Replaces :data:`SPEC_URL` (a mirror, or a local server in tests).
URL_ENV = "HARNESS_SPEC_URL"
#: A folder holding the spec's Markdown (and schema/), used instead of a download.
DIR_ENV = "HARNESS_SPEC_DIR"

#: The documents the audit reads.
DOCUMENTS = (
    "runtime.md",
    "runtime-linux.md",
    "config.md",
    "config-linux.md",
    "features.md",
    "features-linux.md",
    "bundle.md",
)

#: sha256 of each file of tag v1.3.0 (commit 0eaca84ca040a452ebf87480b3f7bedf79d46f46) the
#: harness keeps: the Markdown documents, the ChangeLog, the LICENSE and the JSON Schemas.
PINNED: dict[str, str] = {
    "README.md": "0777e4da8a4eeaebac3806dfbaef124f4e478b56a9ac6f3bc7de96d7dfc0e648",
    "bundle.md": "fcae697b88b84d8578aba9dafa6751b89b16efd891ac602306c7a3a794cb2066",
    "config-freebsd.md": "583c33cbd686e586a2f8f021aa13b61564b332890b9bf0f30b304b8853ddd15b",
    "config-linux.md": "0b9bdad8c8b5ff0ef3e99ff4452c874d9d78a4af347dd145d2b6087e67ca1395",
    "config-solaris.md": "37af60fd24e59770cea91e3e36e758be562b9f42639ee25e77d2c46f120fa7b5",
    "config-vm.md": "869b23d6646837cee4ea7a7e508008026a037ee4f173427986dcbaf111caae05",
    "config-windows.md": "5b3006f2a8ba0901af649735741d25241824ff826f995d62f08808da87a5ca16",
    "config-zos.md": "5c0d8e93547018b39959d32cc38f0cf905bf6f2c4763169700cd7e0c5528e085",
    "config.md": "7a6488aa5d220ce086da3c8c911b2faaeebc2ce55cc5a16048abfa8523b441e3",
    "features-linux.md": "3a7a836e82fb331a40828e2286af9a1c156dbab9da83ea9addc4c4459482a09f",
    "features.md": "875c9110de7103a3ee68a789d7cf6e34019d6b0659732f69b64ec8c09dc40bda",
    "glossary.md": "33428fda078ef264202515cecfd5f79e1516b878518489a7bc160fe2529e6caf",
    "implementations.md": "d210c69ccc3b77d537e5f05d4705399bece85eb9d78388b53925dd9d78f78062",
    "principles.md": "4eb91a4330f8b72c593de9cdbb3e4d96bea07a08e7d54edb89392af04c547ceb",
    "runtime-linux.md": "a3d647928154026958b11dd57cf7e20816e1b98895d49dd0cbaf1482c9692947",
    "runtime.md": "6236bfd0c5762cfcf1e86be084c07e767cb6dff35692959e6811cecf2d334d91",
    "spec.md": "4ed9ac26066097eb9c0d434494aeaec081543b3af7c0b5495ee318c7b442c6dc",
    "style.md": "fa8c52a3ac741ea0e0ba5703881b26f93f5a9ea2a48031f794eab8ade2cfcc4a",
    "ChangeLog": "b4c71d98d5c1797dcc1c60020e05f4bbe7f23bdbfc9ba7b9ecbfe47fdd42383a",
    "LICENSE": "a964a27c435167bdd78827ff83e4bd4473eca53d583a39598d2f445894a9225d",
    "schema/config-freebsd.json": "1014c4bb0b4b31e90d182c43b0cf1352f77e280706786b726bcb622e24e44e39",
    "schema/config-linux.json": "123bb6c446d0054d37f6cc8c569e72cbec5ca5a5a670cf7a77aa30b2834344bc",
    "schema/config-schema.json": "220835b554f2bfb990c95700f9077f2f0a0643a7dbfd3b2676ac55e1aad1d1a3",
    "schema/config-solaris.json": "7c7babccb26a27b266bc195b25d5832ed9fe412c716f9ce6c9702edcb2207c99",
    "schema/config-vm.json": "d927fee38f523c343a471adb9cc56c0719aa6c300aa0c4191c5b9c0551d905c7",
    "schema/config-windows.json": "b9ad0c1d38bb6f3bae4a6efeef33c1c1434ae3801d9d4cb435dc7d21ecf02e48",
    "schema/config-zos.json": "409268930b22de85223f4b64ac357e6f70f72e4465e2e8c1051b32589736f4ef",
    "schema/defs-freebsd.json": "8317c8ca406bc2c32fe01b720be81c3ff722bdeffab0bc3604399601730537af",
    "schema/defs-linux.json": "75f7814a39067ce49f250919e546c99fd30f20b140e354a3248ae0c218874783",
    "schema/defs-vm.json": "b204c703303a98783d13e576f583ab128e88219e77c62b2282361ed2a4f2c352",
    "schema/defs-windows.json": "c0282c945629cbd124cf0389fd7c6e8d334b05a7a717d0efb860ff2ecd488c22",
    "schema/defs-zos.json": "75ca042c97bbb3933ab2a216318468aa70b1e3aa82fc6b6a58f4d4d2df6be0fc",
    "schema/defs.json": "db17c223dd9b3ffb4fb80ca46f11f1a809e6f983f13dd8296c9459ba686f8b8c",
    "schema/features-linux.json": "432aba8857f4bf784c52b27a67d2124de6846e84164637d6967aaa3dbf3b1de2",
    "schema/features-schema.json": "c435f73f02dd9b0f9042e33c6dfa0c1471b97842d4e1786a54c0f94784db8255",
    "schema/state-schema.json": "a096b750c096f43604591061c2692245e5cdf8971be4560512c8b3c28b967f8a",
}

_NEEDS_SPEC = (
    f"give the spec folder (the Markdown of opencontainers/runtime-spec v{SPEC_VERSION}) "
    f"with --spec DIR or in ${DIR_ENV}"
)


class SpecError(HarnessError):
    """The spec text cannot be found, downloaded or read."""


# ----------------------------------------------------------------------------- where it comes from


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_folder(folder: Path) -> Path:
    """``folder`` if it holds the documents the audit reads, else a :class:`SpecError`."""
    if not folder.is_dir():
        raise SpecError(f"{folder}: no such spec folder; {_NEEDS_SPEC}")
    missing = [name for name in DOCUMENTS if not (folder / name).is_file()]
    if missing:
        raise SpecError(f"{folder} is not a runtime-spec folder: it lacks {', '.join(missing)}; {_NEEDS_SPEC}")
    return folder


def differs_from_pin(folder: Path) -> list[str]:
    """The pinned files that are missing from ``folder`` or differ from tag v1.3.0."""
    out = []
    for name, digest in PINNED.items():
        path = folder / name
        try:
            if _sha256(path) != digest:
                out.append(name)
        except OSError:
            out.append(name)
    return out


def spec_dir(
    folder: str | os.PathLike[str] | None = None,
    *,
    cache: Path | None = None,
    url: str | None = None,
    timeout: float = 60,
) -> Path:
    """The spec folder: ``folder``, else ``$HARNESS_SPEC_DIR``, else the pinned release (cached
    or downloaded). Raises :class:`SpecError` naming ``--spec`` and ``HARNESS_SPEC_DIR`` when
    none is there and the download fails."""
    if folder:
        return check_folder(Path(folder))
    if env := os.environ.get(DIR_ENV):
        try:
            return check_folder(Path(env))
        except SpecError as err:
            raise SpecError(f"${DIR_ENV}: {err}") from None
    return fetch_spec(cache=cache, url=url, timeout=timeout)


def fetch_spec(*, cache: Path | None = None, url: str | None = None, timeout: float = 60) -> Path:
    """The pinned release's files in the cache (``cache_dir()/spec/runtime-spec-v1.3.0``),
    downloading the tag's archive on first use. The archive is read in memory; its files are
    written to a temporary folder beside the cache, checked against :data:`PINNED`, and the
    folder is renamed into place, so a failed or mismatching download leaves nothing and
    concurrent callers are safe."""
    root = Path(cache) if cache is not None else cache_dir() / "spec"
    final = root / f"runtime-spec-v{SPEC_VERSION}"
    if final.is_dir():
        bad = differs_from_pin(final)
        if not bad:
            return final
        log.warning(
            "cached spec %s differs from the pinned v%s (%s); downloading it again",
            final,
            SPEC_VERSION,
            ", ".join(bad[:3]),
        )
        shutil.rmtree(final, ignore_errors=True)
    url = url or os.environ.get(URL_ENV) or SPEC_URL
    data = _download(url, timeout)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".runtime-spec-v{SPEC_VERSION}.", dir=root))
    except OSError as err:
        raise SpecError(f"cannot write to the cache folder {root}: {err.strerror}; or {_NEEDS_SPEC}") from None
    try:
        _unpack_pinned(data, url, tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if final.is_dir() and not differs_from_pin(final):  # another caller was first
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("downloaded %s to %s", url, final)
    return final


def _unpack_pinned(data: bytes, url: str, dest: Path) -> None:
    """Write the pinned files of the archive ``data`` (one top folder, as GitHub makes them) to
    ``dest``; any missing or mismatching file is a :class:`SpecError`."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for member in tar:
                parts = member.name.split("/", 1)
                if len(parts) != 2 or parts[1] not in PINNED or not member.isfile():
                    continue
                f = tar.extractfile(member)
                if f is not None:
                    found[parts[1]] = f.read()
    except (tarfile.TarError, EOFError, OSError) as err:
        raise SpecError(f"{url} is not a readable tar archive ({err}); {_NEEDS_SPEC}") from None
    missing = sorted(set(PINNED) - set(found))
    bad = sorted(name for name, body in found.items() if hashlib.sha256(body).hexdigest() != PINNED[name])
    if missing or bad:
        what = "; ".join(
            x
            for x in (
                f"missing {', '.join(missing[:5])}" if missing else "",
                f"sha256 mismatch for {', '.join(bad[:5])}" if bad else "",
            )
            if x
        )
        raise SpecError(
            f"{url} is not runtime-spec v{SPEC_VERSION} as pinned ({what}); nothing was cached; {_NEEDS_SPEC}"
        )
    for name, body in found.items():
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


def _download(url: str, timeout: float) -> bytes:
    try:
        return download.download_bytes(url, timeout)
    except download.DownloadFailed as err:
        raise SpecError(f"no spec folder given and cannot download {url}: {err.reason}; {_NEEDS_SPEC}") from None


# ----------------------------------------------------------------------------- what it says

#: Keywords, longest first so "MUST NOT" wins over "MUST".
KEYWORDS = (
    "MUST NOT",
    "SHALL NOT",
    "SHOULD NOT",
    "NOT RECOMMENDED",
    "MUST",
    "REQUIRED",
    "SHALL",
    "SHOULD",
    "RECOMMENDED",
    "MAY",
    "OPTIONAL",
)
_KEYWORD_RE = re.compile(r"(?<![A-Za-z_])(" + "|".join(k.replace(" ", r"\s+") for k in KEYWORDS) + r")(?![A-Za-z_])")
STRENGTH = {
    "MUST": 0,
    "MUST NOT": 0,
    "REQUIRED": 0,
    "SHALL": 0,
    "SHALL NOT": 0,
    "SHOULD": 1,
    "SHOULD NOT": 1,
    "RECOMMENDED": 1,
    "NOT RECOMMENDED": 1,
    "MAY": 2,
    "OPTIONAL": 2,
}
STRENGTH_NAMES = ("MUST", "SHOULD", "MAY")


def strength(level: str) -> str:
    """MUST, SHOULD or MAY: the group a keyword is counted in."""
    return STRENGTH_NAMES[STRENGTH[level]]


@dataclass(frozen=True)
class Sentence:
    file: str
    section: str  # GitHub anchor of the heading it is under ("" before the first heading)
    line: int  # 1-based line where it starts
    text: str  # as written, its lines joined by single spaces
    norm: str  # normalise(text)
    level: str  # the strongest keyword (a mount option row: its Requirement column)
    keywords: tuple[str, ...]
    table_row: bool = False

    @property
    def digest(self) -> str:
        return digest(self.norm)

    @property
    def strength(self) -> str:
        return strength(self.level) if self.level else ""

    @property
    def anchor(self) -> str:
        return f"{self.file}#{self.section}"


_HTML_RE = re.compile(r"<[^>]*>")
_LINK_RE = re.compile(r"!?\[([^\]]*)\](?:\([^)]*\)|\[[^\]]*\])")
_FOOTNOTE_RE = re.compile(r"\[\^[^\]]*\]")
_UNDERSCORE_EM_RE = re.compile(r"(?<![\w\\])_{1,2}(?=\S)(.+?)(?<=\S)_{1,2}(?![\w])")


def normalise(text: str) -> str:
    """``text`` without what Markdown adds: inline HTML, link targets (the link text stays),
    footnote marks, emphasis, backticks, backslash escapes; whitespace collapsed. A table row's
    cells are joined by " | "."""
    text = " | ".join(c.strip() for c in _cells(text))
    text = _HTML_RE.sub("", text)
    text = _FOOTNOTE_RE.sub("", text)
    for _ in range(2):  # a link inside a link's text
        text = _LINK_RE.sub(r"\1", text)
    text = text.replace("`", "").replace("*", "")
    text = _UNDERSCORE_EM_RE.sub(r"\1", text)
    text = re.sub(r"\\(.)", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def digest(norm: str) -> str:
    """A short stable digest of a normalised sentence."""
    return hashlib.sha256(norm.encode()).hexdigest()[:12]


def keywords(text: str) -> tuple[str, ...]:
    return tuple(re.sub(r"\s+", " ", m) for m in _KEYWORD_RE.findall(_strip_code(text)))


def _strip_code(text: str) -> str:
    """``text`` without inline code spans (a keyword inside backticks is not one)."""
    return re.sub(r"`[^`]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading's text (before de-duplication)."""
    text = _HTML_RE.sub("", heading)
    text = _LINK_RE.sub(r"\1", text)
    text = text.replace("`", "").replace("*", "")
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


_FENCE_RE = re.compile(r"^\s*(```|~~~)")
_HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_ITEM_RE = re.compile(r"^(\s*)(?:[*+-]|\d+[.)])\s+")
_SEPARATOR_RE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-+:?\s*)+\|?\s*$")
_LINKDEF_RE = re.compile(r"^\s*\[[^\]]+\]:\s")


def _cells(row: str) -> list[str]:
    row = row.strip()
    row = row.removeprefix("|")
    row = row.removesuffix("|")
    return row.split("|")


def headings(text: str) -> list[tuple[int, str]]:
    """``[(line, anchor)]`` of a Markdown document's headings, outside code blocks, with
    GitHub's -1, -2... suffixes for repeated ones."""
    return [(n, anchor) for n, _, anchor in outline(text)]


def outline(text: str) -> list[tuple[int, int, str]]:
    """``[(line, depth, anchor)]`` of a Markdown document's headings (see :func:`headings`)."""
    out: list[tuple[int, int, str]] = []
    seen: dict[str, int] = {}
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        if _FENCE_RE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        if m := _HEADING_RE.match(line):
            base = slug(m.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            out.append((n, len(m.group(1)), base if count == 0 else f"{base}-{count}"))
    return out


def ancestors(folder: Path, documents: tuple[str, ...] = DOCUMENTS) -> dict[str, dict[str, tuple[str, ...]]]:
    """``{document: {anchor: (the anchors of the headings it is under, outermost first)}}``."""
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for name in documents:
        try:
            text = (folder / name).read_text(encoding="utf-8")
        except OSError as err:
            raise SpecError(f"cannot read {folder / name}: {err.strerror}; {_NEEDS_SPEC}") from None
        stack: list[tuple[int, str]] = []
        out[name] = {}
        for _, depth, anchor in outline(text):
            while stack and stack[-1][0] >= depth:
                stack.pop()
            out[name][anchor] = tuple(a for _, a in stack)
            stack.append((depth, anchor))
    return out


_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.")
_BOUNDARY_RE = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z`*\[(\"_])")


_CAPITAL_RE = re.compile(r"[A-Z][a-z]")


def split_sentences(text: str) -> list[str]:
    """Sentences of a paragraph (its lines joined by single spaces; a newline is a sentence
    break)."""
    if "\n" in text:
        return [s for part in text.split("\n") for s in split_sentences(part)]
    out, start = [], 0
    for m in _BOUNDARY_RE.finditer(text):
        before = text[start : m.start()]
        if before.endswith(_ABBREVIATIONS[:2]) or before.count("`") % 2:
            continue
        out.append(text[start : m.end()].strip())
        start = m.end()
    out.append(text[start:].strip())
    return [s for s in out if s]


def _blocks(text: str):
    """``(line, text, is_table_row, table_header)`` for each paragraph, list item and table row
    outside code blocks, HTML comments, headings and link definitions."""
    lines = text.splitlines()
    fenced = comment = False
    block: list[str] = []
    block_line = 0
    header: list[str] | None = None

    def flush():
        nonlocal block
        if block:
            joined = block[0]
            for prev, line in itertools.pairwise(block):
                # one sentence a line is the spec's style: a line that ends in ")" without a
                # full stop, followed by one that starts a capitalised word, starts a sentence
                # ("... (as defined by `period` below)" / "If specified, ...")
                joined += ("\n" if prev.endswith(")") and _CAPITAL_RE.match(line) else " ") + line
            yield (block_line, joined, False, None)
        block = []

    i = 0
    while i < len(lines):
        line = lines[i]
        n = i + 1
        i += 1
        if comment:
            if "-->" in line:
                comment = False
            continue
        if _FENCE_RE.match(line):
            yield from flush()
            fenced = not fenced
            continue
        if fenced:
            continue
        if line.lstrip().startswith("<!--"):
            yield from flush()
            comment = "-->" not in line
            continue
        if not line.strip():
            yield from flush()
            header = None
            continue
        if _HEADING_RE.match(line):
            yield from flush()
            yield (n, line, False, "#")
            continue
        if i < len(lines) and _SEPARATOR_RE.match(lines[i]) and "|" in line:
            yield from flush()
            header = [c.strip().lower() for c in _cells(line)]
            i += 1
            continue
        if header is not None and "|" in line:
            yield (n, line.strip(), True, header)
            continue
        if _LINKDEF_RE.match(line):
            yield from flush()
            continue
        if m := _ITEM_RE.match(line):
            yield from flush()
            block_line = n
            block.append(line[m.end() :].strip())
            continue
        if not block:
            block_line = n
        block.append(line.strip().lstrip("> ").strip() if line.lstrip().startswith(">") else line.strip())
    yield from flush()


def _level(kws: tuple[str, ...]) -> str:
    return min(kws, key=lambda k: STRENGTH[k])


def extract_text(file: str, text: str, *, every: bool = False) -> list[Sentence]:
    """The RFC 2119 sentences of one Markdown document (``every``: also the sentences without
    a keyword, with level "")."""
    out: list[Sentence] = []
    seen: dict[str, int] = {}
    section = ""
    for line, body, is_row, header in _blocks(text):
        if header == "#":
            m = _HEADING_RE.match(body)
            assert m
            base = slug(m.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            section = base if count == 0 else f"{base}-{count}"
            continue
        if is_row:
            kws = keywords(body)
            if not kws:
                if every:
                    out.append(Sentence(file, section, line, body, normalise(body), "", (), True))
                continue
            level = _level(kws)
            if header and "requirement" in header:
                cell = (
                    _cells(body)[header.index("requirement")].strip()
                    if len(_cells(body)) > header.index("requirement")
                    else ""
                )
                level = cell if cell in STRENGTH else level
            out.append(Sentence(file, section, line, body, normalise(body), level, kws, True))
            continue
        for sentence in split_sentences(body):
            kws = keywords(sentence)
            if kws or every:
                out.append(
                    Sentence(file, section, line, sentence, normalise(sentence), _level(kws) if kws else "", kws)
                )
    return out


def extract(folder: Path, documents: tuple[str, ...] = DOCUMENTS, *, every: bool = False) -> list[Sentence]:
    """The RFC 2119 sentences of the spec documents in ``folder`` (``every``: all sentences)."""
    out: list[Sentence] = []
    for name in documents:
        try:
            text = (folder / name).read_text(encoding="utf-8")
        except OSError as err:
            raise SpecError(f"cannot read {folder / name}: {err.strerror}; {_NEEDS_SPEC}") from None
        out.extend(extract_text(name, text, every=every))
    return out


def anchors(folder: Path, documents: tuple[str, ...] = DOCUMENTS) -> dict[str, set[str]]:
    """``{document: {heading anchors}}``."""
    out = {}
    for name in documents:
        try:
            text = (folder / name).read_text(encoding="utf-8")
        except OSError as err:
            raise SpecError(f"cannot read {folder / name}: {err.strerror}; {_NEEDS_SPEC}") from None
        out[name] = {a for _, a in headings(text)}
    return out
