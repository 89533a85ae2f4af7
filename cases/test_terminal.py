"""The terminal (config.md "Process": terminal, consoleSize). With terminal true a pseudoterminal
pair is allocated and its slave is the process's stdin, stdout and stderr; the runtime hands the
master to its caller over the --console-socket (SCM_RIGHTS), the convention of runc and crun.
With terminal false (the default) the process keeps the stdio the runtime was given."""

import errno
import fcntl
import os
import select
import shutil
import socket
import stat
import struct
import tempfile
import termios
import threading
import time

import pytest

from harness.runtime import process

pytestmark = pytest.mark.requires("root")

TIOCGPTN = 0x80045430  # _IOR('T', 0x30, unsigned int): the number of a pty master's slave
UNIX98_PTY_MAJOR = 136  # /dev/pts/N is char device (136 + N // 256, N % 256)


class ConsoleSocket:
    """A listening unix socket that receives one file descriptor (the pty master)."""

    def __init__(self) -> None:
        # sun_path holds 108 bytes: a short folder of our own, removed in close().
        self.dir = tempfile.mkdtemp(prefix="ocih-tty-", dir="/tmp")
        self.path = os.path.join(self.dir, "console.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.sock.settimeout(0.05)
        self.master: int | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        deadline = time.monotonic() + 30
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                if time.monotonic() > deadline:
                    self.error = "no runtime connected to the console socket within 30 s"
                    return
                continue
            except OSError as err:
                self.error = f"accept: {err}"
                return
            with conn:
                conn.settimeout(30)
                try:
                    _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
                except OSError as err:
                    self.error = f"recv_fds: {err}"
                    return
            if not fds:
                self.error = "the runtime connected but sent no file descriptor"
                return
            self.master = fds[0]
            for extra in fds[1:]:
                os.close(extra)
            return

    def receive(self, timeout: float = 10.0) -> int:
        self._thread.join(timeout)
        if self.master is None:
            raise AssertionError(f"no pty master arrived on the console socket: {self.error or 'still waiting'}")
        return self.master

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        if self.master is not None:
            os.close(self.master)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def console():
    c = ConsoleSocket()
    yield c
    c.close()


def create_with_console(c, console):
    """``create --console-socket``: the runtime sends the pty master to ``console``."""
    c.create(extra=("--console-socket", console.path))
    return console.receive()


def read_until(fd, needle: bytes, timeout: float = 10.0) -> bytes:
    """Read the pty master until ``needle`` shows up (or the slave side is closed)."""
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"expected {needle!r} from the terminal within {timeout:g} s, read {data!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError as err:
            if err.errno == errno.EIO:  # every slave fd is closed
                break
            raise
        if not chunk:
            break
        data += chunk
    return data


def terminal_bundle(bundle_factory, *verbs, **process):
    def edit(config):
        config["process"]["terminal"] = True
        config["process"].update(process)

    return bundle_factory(*verbs, edit=edit)


@pytest.mark.spec("config.process.terminal")
def test_terminal_slave_is_the_stdio(runtime, bundle_factory, container_factory, console):
    c = container_factory(terminal_bundle(bundle_factory, "hostname", "pause"))
    master = create_with_console(c, console)
    c.start()
    out = read_until(master, b"oci-harness\r\n")
    assert b"oci-harness\r\n" in out, f"the process's output did not come through the terminal: {out!r}"
    number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
    slave = os.makedev(UNIX98_PTY_MAJOR + number // 256, number % 256)
    for fd in (0, 1, 2):
        st = os.stat(f"/proc/{c.pid}/fd/{fd}")
        assert stat.S_ISCHR(st.st_mode), f"fd {fd} of the process is not a character device: mode {oct(st.st_mode)}"
        assert st.st_rdev == slave, (
            f"fd {fd} is device {os.major(st.st_rdev)}:{os.minor(st.st_rdev)}, not the slave pts {number} of the master we got"
        )
    c.kill("TERM")
    out = read_until(master, b"SIGTERM")
    c.wait()
    assert b"SIGTERM" in out


@pytest.mark.spec("config.process.terminal")
def test_terminal_input_reaches_the_process(runtime, bundle_factory, container_factory, console):
    c = container_factory(terminal_bundle(bundle_factory, "cat", "/proc/self/fd/0"))
    master = create_with_console(c, console)
    attrs = termios.tcgetattr(master)
    attrs[3] &= ~termios.ECHO  # only what the process writes comes back
    termios.tcsetattr(master, termios.TCSANOW, attrs)
    c.start()
    os.write(master, b"typed at the terminal\n\x04")  # a line, then end-of-file (^D)
    out = read_until(master, b"typed at the terminal")
    end = c.wait()
    assert b"typed at the terminal" in out, f"the process did not read the terminal's input: {out!r}"
    assert end.code in (0, None), f"cat of the terminal exited {end}"


@pytest.mark.spec("config.process.console-size")
def test_console_size(runtime, bundle_factory, container_factory, console):
    bundle = terminal_bundle(bundle_factory, "hostname", "pause", consoleSize={"height": 31, "width": 97})
    c = container_factory(bundle)
    master = create_with_console(c, console)
    c.start()
    read_until(master, b"oci-harness")
    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(master, termios.TIOCGWINSZ, b"\0" * 8))
    c.kill("TERM")
    c.wait()
    assert (rows, cols) == (31, 97), f"terminal size: expected 31 rows x 97 columns, got {rows} x {cols}"


@pytest.mark.spec("config.process.console-size-ignored", "config.process.terminal-default")
def test_console_size_ignored_without_terminal(runtime, run_probe):
    def edit(config):
        config["process"].pop("terminal", None)
        config["process"]["consoleSize"] = {"height": 31, "width": 97}

    _c, out = run_probe("hostname", edit=edit)
    assert out == "oci-harness\n", f"expected the hostname in the stdout file, got {out!r}"


@pytest.mark.spec("config.process.terminal-default")
def test_stdio_is_passed_without_terminal(runtime, bundle_factory, container_factory, tmp_path):
    stdin_path = tmp_path / "stdin.txt"
    stdin_path.write_text("from the harness\n")
    c = container_factory(
        bundle_factory("cat", "/proc/self/fd/0", "pause", edit=lambda config: config["process"].pop("terminal", None))
    )
    with open(stdin_path, "rb") as stdin:
        c.create(stdin=stdin)
    c.start()
    assert process.until(lambda: c.stdout() == "from the harness\n", 10.0), (
        f"stdin did not reach stdout: {c.stdout()!r}"
    )
    for fd, path in ((0, stdin_path), (1, c.stdout_path), (2, c.stderr_path)):
        inside, given = os.stat(f"/proc/{c.pid}/fd/{fd}"), os.stat(path)
        assert (inside.st_dev, inside.st_ino) == (given.st_dev, given.st_ino), (
            f"fd {fd} of the process is {os.readlink(f'/proc/{c.pid}/fd/{fd}')}, not the file the runtime was given ({path})"
        )
    c.kill("TERM")
    c.wait()
    assert c.stdout() == "from the harness\nSIGTERM\n"


@pytest.mark.spec("config.process.terminal-default")
def test_stdout_and_stderr_stay_apart_without_terminal(runtime, bundle_factory, container_factory):
    c = container_factory(bundle_factory("hostname", "cat", "/no-such-file"))
    c.create()
    c.start()
    end = c.wait()
    assert end.code in (1, None), f"the probe's failing cat should exit 1, got {end}"
    assert c.stdout() == "oci-harness\n", f"stdout: {c.stdout()!r}"
    assert c.stderr() == "probe: cat /no-such-file: No such file or directory\n", f"stderr: {c.stderr()!r}"
