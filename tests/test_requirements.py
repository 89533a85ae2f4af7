import pytest

from harness import requirements
from harness.errors import HarnessError

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
    write(tmp_path, "[[requirement]]\n" + ENTRY.format(id="a", level="MUST") + "[[requirement]]\n" + ENTRY.format(id="a", level="MUST"))
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
        "[[requirement]]\n" + ENTRY.format(id="a", level="MUST")
        + "[[requirement]]\n" + ENTRY.format(id="b", level="MUST NOT")
        + "[[requirement]]\n" + ENTRY.format(id="c", level="MUST") + 'testable = false\nwhy = "no"\n'
        + "[[requirement]]\n" + ENTRY.format(id="d", level="MAY"),
    )
    rows = requirements.coverage({"a": ["x::t1"], "d": ["x::t2"]}, requirements.load(tmp_path))
    assert [r.status for r in rows] == ["covered", "not covered", "not testable", "covered"]
    assert requirements.totals(rows) == {("runtime.md", "MAY"): (1, 1, 0), ("runtime.md", "MUST"): (1, 3, 1)}


def test_every_case_names_known_requirements_and_every_testable_must_of_runtime_md_is_covered():
    found = requirements.collect_cases(ROOT / "cases")
    cat = requirements.catalogue()
    assert set(found) <= set(cat)
    missing = [r.id for r in cat.values() if r.file == "runtime.md" and r.strength == "MUST" and r.testable and r.id not in found]
    assert missing == [], f"runtime.md MUSTs without a case: {missing}"
