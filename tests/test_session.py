"""harness.runtime.open_session: the one way to run containers (state root, journal, subreaper,
cleanup on exit), against a fake runtime that keeps its containers as files in its state root."""

import stat
import sys
import textwrap

import pytest

from harness import _linux, journal
from harness.runtime import Container, RuntimeDefinition, open_session

#: create makes ROOT/ID (and a child that sleeps, as a container's init); state reads it; delete
#: removes it, unless ROOT/stuck exists (a runtime that cannot delete)
FAKE = """
root = args[args.index('--root') + 1]
cmd, cid = args[2], args[-1]
path = os.path.join(root, cid)
if cmd == 'create':
    import subprocess
    p = subprocess.Popen(['sleep', '300'], start_new_session=True)
    open(args[args.index('--pid-file') + 1], 'w').write(str(p.pid))
    open(path, 'w').write(str(p.pid))
elif cmd == 'state':
    if not os.path.exists(path):
        sys.exit('no such container')
    print(json.dumps({'ociVersion': '1.3.0', 'id': cid, 'status': 'created', 'pid': int(open(path).read())}))
elif cmd == 'delete':
    if os.path.exists(os.path.join(root, 'stuck')):
        sys.exit('cannot delete')
    if not os.path.exists(path):
        sys.exit('no such container')
    try:
        os.kill(int(open(path).read()), 9)
    except ProcessLookupError:
        pass  # killed already (harness cleanup kills a recorded container's process itself)
    os.unlink(path)
"""


@pytest.fixture
def fake(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "base"))
    binary = tmp_path / "fakert"
    binary.write_text(f"#!{sys.executable}\nimport sys, json, os\nargs = sys.argv[1:]\n" + textwrap.dedent(FAKE))
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    return RuntimeDefinition(name="fakert", binary=str(binary))


def test_a_session_wires_runtimes_to_its_state_root_and_journal(fake, tmp_path):
    was = _linux.is_child_subreaper()
    with open_session("s1") as session:
        assert _linux.is_child_subreaper(), "the session makes the harness a child subreaper"
        rt = session.runtime(fake)
        other = session.runtime(fake, key="other", timeout=3)
        assert rt.state_root == tmp_path / "base" / "s1" / "fakert"
        assert other.state_root == tmp_path / "base" / "s1" / "other" and other.timeout == 3
        assert rt.journal is session.journal and rt.session is session
        entries = journal.read(session.journal.path)
        assert [(e["kind"], e["key"]) for e in entries.pending] == [("state_root", str(session.root))]
        with Container(rt, "c1", tmp_path, tmp_path / "io") as c:
            c.create()
            assert (rt.state_root / "c1").exists()
        assert not (rt.state_root / "c1").exists()
    assert _linux.is_child_subreaper() == was, "the subreaper setting is put back"
    assert not (tmp_path / "base" / "s1").exists(), "the state root is removed"
    assert not list((tmp_path / "base").rglob("*.jsonl")), "the journal is removed"


def test_containers_left_by_an_interrupted_block_are_removed(fake, tmp_path):
    with pytest.raises(KeyboardInterrupt), open_session("s2") as session:
        rt = session.runtime(fake)
        c = Container(rt, "c2", tmp_path, tmp_path / "io")
        c.create()
        pid = c.pid
        raise KeyboardInterrupt  # between create and cleanup
    assert not (tmp_path / "base" / "s2").exists()
    assert not list((tmp_path / "base").rglob("*.jsonl"))
    from harness.runtime import process

    assert not process.alive(pid), "the container's process outlived the session"


def test_a_container_that_cannot_be_removed_keeps_its_state_for_harness_cleanup(fake, tmp_path, capsys):
    with open_session("s3") as session:
        rt = session.runtime(fake)
        Container(rt, "c3", tmp_path, tmp_path / "io").create()
        (rt.state_root / "stuck").write_text("")
        path = session.journal.path
    assert "c3" in capsys.readouterr().err, "what was left is said"
    assert (rt.state_root / "c3").exists(), "the state root is kept"
    pending = journal.read(path).pending
    assert {(e["kind"], e["key"]) for e in pending} == {("container", "c3"), ("state_root", str(session.root))}
    (rt.state_root / "stuck").unlink()
    report = journal.cleanup(path.parent, include_live=True)
    assert not report.errors, report.errors
    assert not (tmp_path / "base" / "s3").exists() and not path.exists()
