import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import requirements, spectext
from harness.errors import HarnessError
from harness.requirements import audit

ROOT = requirements.HERE.parents[1]


def write(tmp_path, text):
    (tmp_path / "area.toml").write_text(text)
    return tmp_path


ENTRY = 'id = "{id}"\nfile = "runtime.md"\nsection = "create"\nlevel = "{level}"\ntext = "t"\n'


def test_shipped_catalogue_loads_with_unique_ids():
    cat = requirements.catalogue()
    assert len(cat) > 200
    assert all(r.level in requirements.LEVELS for r in cat.values())


def test_duplicate_ids_and_bad_levels_are_errors(tmp_path):
    write(
        tmp_path,
        "[[requirement]]\n"
        + ENTRY.format(id="a", level="MUST")
        + "[[requirement]]\n"
        + ENTRY.format(id="a", level="MUST"),
    )
    with pytest.raises(HarnessError, match="defined twice"):
        requirements.load(tmp_path)
    write(tmp_path, "[[requirement]]\n" + ENTRY.format(id="a", level="OUGHT"))
    with pytest.raises(HarnessError, match="level 'OUGHT'"):
        requirements.load(tmp_path)
    write(tmp_path, "[[requirement]]\n" + ENTRY.format(id="a", level="MUST") + "testable = false\n")
    with pytest.raises(HarnessError, match="needs a why"):
        requirements.load(tmp_path)


def test_coverage_and_totals(tmp_path):
    write(
        tmp_path,
        "[[requirement]]\n"
        + ENTRY.format(id="a", level="MUST")
        + "[[requirement]]\n"
        + ENTRY.format(id="b", level="MUST NOT")
        + "[[requirement]]\n"
        + ENTRY.format(id="c", level="MUST")
        + 'testable = false\nwhy = "no"\n'
        + "[[requirement]]\n"
        + ENTRY.format(id="d", level="MAY"),
    )
    rows = requirements.coverage({"a": ["x::t1"], "d": ["x::t2"]}, requirements.load(tmp_path))
    assert [r.status for r in rows] == ["covered", "not covered", "not testable", "covered"]
    assert requirements.totals(rows) == {("runtime.md", "MAY"): (1, 1, 0), ("runtime.md", "MUST"): (1, 3, 1)}


def test_every_case_names_known_requirements_and_every_testable_must_of_runtime_md_is_covered():
    found = requirements.collect_cases(ROOT / "cases")
    cat = requirements.catalogue()
    assert set(found) <= set(cat)
    missing = [
        r.id
        for r in cat.values()
        if r.file == "runtime.md" and r.strength == "MUST" and r.testable and r.id not in found
    ]
    assert missing == [], f"runtime.md MUSTs without a case: {missing}"


# -- sentences and the audit ----------------------------------------------------------------------

SPEC = os.environ.get(spectext.DIR_ENV)
needs_spec = pytest.mark.skipif(
    not SPEC or not Path(SPEC, "runtime.md").is_file(),
    reason=f"no spec folder: set ${spectext.DIR_ENV} to runtime-spec v1.3.0 (.ci/run does)",
)


def test_sentence_fields_are_checked(tmp_path):
    base = "[[requirement]]\n" + ENTRY.format(id="a", level="MUST")
    write(tmp_path, base + 'sentence = "x"\nsentences = ["y"]\n')
    with pytest.raises(HarnessError, match="either sentence or sentences"):
        requirements.load(tmp_path)
    write(tmp_path, base + "sentences = []\n")
    with pytest.raises(HarnessError, match="sentences is empty"):
        requirements.load(tmp_path)
    write(tmp_path, base + 'sentences = ["ok", " "]\n')
    with pytest.raises(HarnessError, match="non-empty strings"):
        requirements.load(tmp_path)
    write(tmp_path, base + 'sentences = ["a", "b"]\n')
    assert requirements.load(tmp_path)["a"].sentences == ("a", "b")
    write(tmp_path, '[[sentence]]\nfile = "config.md"\nsection = "root"\napplies_to = "author"\nsentence = "x"\n')
    with pytest.raises(HarnessError, match="applies_to 'author' is not one of config-author"):
        requirements.load_markings(tmp_path)
    write(tmp_path, '[[sentence]]\nfile = "config.md"\nsection = "root"\napplies_to = "windows"\n')
    with pytest.raises(HarnessError, match="missing field 'sentence'"):
        requirements.load_markings(tmp_path)


MINI = {
    "runtime.md": "# Runtime\n## Create\nThe runtime MUST create it.\nIt SHOULD be quick.\nIt MAY log.\n"
    "## Start\nThe runtime MUST start it.\nConfig authors MUST set `x`.\n",
    "config.md": "# Config\n## Root\n* **`path`** (string, REQUIRED) is the root.\n    On Windows it MUST be a GUID path.\n",
}


def mini_spec(tmp_path: Path) -> Path:
    folder = tmp_path / "spec"
    folder.mkdir()
    for name in spectext.DOCUMENTS:
        (folder / name).write_text(MINI.get(name, "# Empty\n"))
    return folder


def test_audit_joins_sentences_to_entries(tmp_path):
    cat = tmp_path / "cat"
    cat.mkdir()
    (cat / "area.toml").write_text(
        '[[requirement]]\nid = "create"\nfile = "runtime.md"\nsection = "create"\nlevel = "MUST"\ntext = "t"\n'
        'sentence = "The runtime  MUST create\\n it."\n'
        '[[requirement]]\nid = "quick"\nfile = "runtime.md"\nsection = "start"\nlevel = "SHOULD"\ntext = "t"\n'
        'sentence = "It SHOULD be quick."\ntestable = false\nwhy = "no clock"\n'
        '[[requirement]]\nid = "gone"\nfile = "runtime.md"\nsection = "stop"\nlevel = "MUST"\ntext = "t"\n'
        'sentence = "The runtime MUST stop it."\n'
        '[[requirement]]\nid = "both"\nfile = "runtime.md"\nsection = "create"\nlevel = "MAY"\ntext = "t"\n'
        'sentence = "It SHOULD be quick. It MAY log."\n'
        '[[requirement]]\nid = "bare"\nfile = "runtime.md"\nsection = "create"\nlevel = "MAY"\ntext = "t"\n'
        '[[sentence]]\nfile = "runtime.md"\nsection = "start"\napplies_to = "config-author"\nsentence = "Config authors MUST set `x`."\n'
        '[[sentence]]\nfile = "config.md"\nsection = "root"\napplies_to = "config-author"\n'
        'sentences = ["**`path`** (string, REQUIRED) is the root."]\n'
        '[[sentence]]\nfile = "config.md"\nsection = "root"\napplies_to = "windows"\nsentence = "On Windows it MUST be a GUID path."\n'
    )
    result = audit.audit(
        mini_spec(tmp_path), {"create": ["cases/t.py::t"]}, requirements.load(cat), requirements.load_markings(cat)
    )
    status = {r.sentence.text: r.status for r in result.rows}
    assert status == {
        "The runtime MUST create it.": "covered",
        "It SHOULD be quick.": "not covered",  # "both" can be tested
        "It MAY log.": "not covered",
        "The runtime MUST start it.": "NOT CATALOGUED",
        "Config authors MUST set `x`.": "not the runtime's (config-author)",
        "**`path`** (string, REQUIRED) is the root.": "not the runtime's (config-author)",
        "On Windows it MUST be a GUID path.": "not the runtime's (windows)",
    }
    assert [r.sentence.text for r in result.missing()] == ["The runtime MUST start it."]
    assert [(u.who, u.sentence) for u in result.unmatched] == [("gone", "The runtime MUST stop it.")]
    assert [r.id for r in result.no_sentence] == ["bare"]
    assert result.bad_anchors == [("gone", "runtime.md#stop")]
    assert result.wrong_section == [("quick", "runtime.md#start", "runtime.md#create")]
    assert result.totals()[("runtime.md", "MUST")] == {
        "sentences": 3,
        "runtime": 2,
        "catalogued": 1,
        "covered": 1,
        "not testable": 0,
    }
    assert result.totals()[("config.md", "MUST")] == {
        "sentences": 2,
        "runtime": 0,
        "catalogued": 0,
        "covered": 0,
        "not testable": 0,
    }
    assert [q.id for q in next(r for r in result.rows if r.sentence.text == "It SHOULD be quick.").requirements] == [
        "quick",
        "both",
    ]
    assert not result.clean
    table = audit.format_table(result)
    assert "runtime.md         MUST" in table and table.splitlines()[-1].split()[1:] == ["7", "4", "3", "1", "0", "1"]


def test_audit_command_without_a_spec_names_the_ways_to_give_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != spectext.DIR_ENV}
    env.update(
        PYTHONPATH=str(ROOT), HARNESS_CACHE_DIR=str(tmp_path), HARNESS_SPEC_URL="http://127.0.0.1:9/v1.3.0.tar.gz"
    )
    r = subprocess.run(
        [sys.executable, "-m", "harness", "requirements", "--audit"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--spec DIR" in r.stderr and "HARNESS_SPEC_DIR" in r.stderr


@needs_spec
def test_every_catalogue_entry_matches_the_pinned_spec():
    """Every anchor is a heading of v1.3.0, every entry has its sentence(s), and every
    sentence is one of v1.3.0 (a sentence that changes in a new release shows up here)."""
    result = audit.audit(Path(SPEC))
    assert result.differs_from_pin == []
    assert [f"{w}: {a}" for w, a in result.bad_anchors] == []
    assert [f"{u.who}: {u.sentence}" for u in result.unmatched] == []


@needs_spec
def test_every_runtime_must_and_should_sentence_of_v1_3_0_has_an_entry():
    """The audit against the pinned v1.3.0: every sentence that constrains the runtime at MUST
    or SHOULD strength has a catalogue entry (or is marked as someone else's in scope.toml)."""
    result = audit.audit(Path(SPEC))
    missing = [f"{r.sentence.anchor} [{r.sentence.level}] {r.sentence.text}" for r in result.missing()]
    assert missing == [], "runtime MUST/SHOULD sentences without a catalogue entry:\n" + "\n".join(missing)
    assert [r.id for r in result.no_sentence] == [], "catalogue entries without their spec sentence"
    assert [f"{w}: {a} (the sentence is in {b})" for w, a, b in result.wrong_section] == []
    untestable = [r.id for r in audit.catalogue().values() if not r.testable and len(r.why) < 20]
    assert untestable == [], f"not testable without saying what the host or spec lacks: {untestable}"


@needs_spec
def test_audit_command_prints_the_table_and_passes_on_v1_3_0(tmp_path, capsys):
    from harness import cli

    (tmp_path / "cases").mkdir()  # no cases: nothing covered, but every sentence catalogued
    assert cli.main(["requirements", "--audit", SPEC, "--cases", str(tmp_path / "cases")]) == 0
    out = capsys.readouterr().out
    assert "(the pinned v1.3.0)" in out and "with no catalogue entry (" not in out
    last = out.split("\n-")[-1].splitlines()[1].split()
    assert last[0] == "all" and last[2] == last[3] and last[4] == "0" and last[-1] == "0", out
