"""Hook recorder for the hooks and features cases.

Hooks are executables the runtime runs at points of the lifecycle (config.md "POSIX-platform
Hooks"). Every hook in these cases is ``hookrec``, a small static C program: it appends one JSON
line to a log file saying what it saw, then optionally sleeps, waits for a signal or exits with
a given status. Being static, the same binary runs on the host (hooks run in the runtime
namespace), before ``pivot_root`` (``createContainer``) and inside the container's root
filesystem (``startContainer``, and the container's own process).

Command line: ``hookrec LABEL LOG [WORDS...]``. ``LABEL`` is argv[0] as configured (a hook's
``args[0]`` is passed as given), ``LOG`` is the file to append to. The words ``exit=N``,
``sleep=SECONDS`` and ``pause`` are directives; every word is recorded. A record holds:

``argv``, ``env`` (the whole environment), ``stdin`` (what the runtime wrote, i.e. the state),
``pid``, ``ppid``, ``t`` (CLOCK_MONOTONIC seconds, comparable with :func:`time.monotonic`),
``cwd``, ``hostname``, ``ns`` (inode of each ``/proc/self/ns/*``), ``root`` ([dev, ino] of the
hook's own ``/``) and ``target``: for the ``pid`` found in the state on stdin, its ``cmdline``,
``root`` ([dev, ino] of ``/proc/PID/root``) and ``ns``, or null when there is no such process.

Each record is written with a single ``write`` on an ``O_APPEND`` descriptor, so concurrent
writers never interleave and the file order is the time order of the writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import atomic
from harness._paths import cache_dir
from harness.errors import HarnessError

#: Hook kinds in lifecycle order (config.md "POSIX-platform Hooks").
KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
#: Hooks executed in the runtime namespace; the others run in the container namespace.
RUNTIME_NS_KINDS = ("prestart", "createRuntime", "poststart", "poststop")
CONTAINER_NS_KINDS = ("createContainer", "startContainer")
#: Hooks that are part of ``create``.
CREATE_KINDS = ("prestart", "createRuntime", "createContainer")

#: Where the recorder lives inside a root filesystem (startContainer paths resolve there).
IN_ROOTFS = "/hookrec"
#: The shared log, as the container sees it (host side: ``<rootfs>/hooks.log``).
LOG_IN_CONTAINER = "/hooks.log"

SOURCE = r"""
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static char *buf; static size_t len, cap;

static void put(const char *s, size_t n) {
    if (len + n + 1 > cap) { cap = (len + n + 1) * 2 + 4096; buf = realloc(buf, cap); if (!buf) _exit(120); }
    memcpy(buf + len, s, n); len += n; buf[len] = 0;
}
static void puts_(const char *s) { put(s, strlen(s)); }
static void putf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static void putf(const char *fmt, ...) {
    char tmp[256]; va_list ap; va_start(ap, fmt); int n = vsnprintf(tmp, sizeof tmp, fmt, ap); va_end(ap);
    if (n > 0) put(tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}
static void putstr(const char *s, size_t n) {
    put("\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') { char e[2] = {'\\', (char)c}; put(e, 2); }
        else if (c < 0x20 || c >= 0x7f) putf("\\u%04x", c);
        else put((const char *)&c, 1);
    }
    put("\"", 1);
}
static void putcstr(const char *s) { if (s) putstr(s, strlen(s)); else puts_("null"); }

static char *slurp_fd(int fd, size_t *out) {
    size_t n = 0, c = 4096; char *b = malloc(c);
    for (;;) {
        if (n + 4096 > c) { c *= 2; b = realloc(b, c); }
        ssize_t r = read(fd, b + n, c - n - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    b[n] = 0; *out = n; return b;
}

static const char *NS[] = {"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"};

static void put_ns(const char *base) {
    puts_("{"); int first = 1;
    for (size_t i = 0; i < sizeof NS / sizeof *NS; i++) {
        char p[128]; struct stat st; snprintf(p, sizeof p, "%s/%s", base, NS[i]);
        if (stat(p, &st) != 0) continue;
        if (!first) puts_(","); first = 0;
        putf("\"%s\":%llu", NS[i], (unsigned long long)st.st_ino);
    }
    puts_("}");
}
static void put_root(const char *p) {
    struct stat st;
    if (stat(p, &st) == 0) putf("[%llu,%llu]", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    else puts_("null");
}

static long state_pid(const char *s) {
    const char *p = strstr(s, "\"pid\"");
    if (!p) return -1;
    p += 5;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ':') p++;
    if (*p < '0' || *p > '9') return -1;
    return strtol(p, NULL, 10);
}

static void on_term(int sig) { (void)sig; _exit(0); }

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: hookrec LOG [words...] (argv[0] is the label)\n"); return 2; }
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    size_t in_len = 0; char *in = slurp_fd(0, &in_len);
    puts_("{\"argv\":[");
    for (int i = 0; i < argc; i++) { if (i) puts_(","); putcstr(argv[i]); }
    puts_("],\"env\":[");
    for (char **e = environ; e && *e; e++) { if (e != environ) puts_(","); putcstr(*e); }
    puts_("],\"stdin\":"); putstr(in, in_len);
    putf(",\"pid\":%ld,\"ppid\":%ld,\"t\":%lld.%09ld", (long)getpid(), (long)getppid(), (long long)ts.tv_sec, ts.tv_nsec);
    char cwd[4096]; puts_(",\"cwd\":"); putcstr(getcwd(cwd, sizeof cwd));
    char host[256] = ""; gethostname(host, sizeof host - 1); puts_(",\"hostname\":"); putcstr(host);
    puts_(",\"ns\":"); put_ns("/proc/self/ns");
    puts_(",\"root\":"); put_root("/");
    puts_(",\"target\":");
    long tpid = state_pid(in); char p[64];
    snprintf(p, sizeof p, "/proc/%ld", tpid);
    if (tpid > 0 && access(p, F_OK) == 0) {
        puts_("{\"pid\":"); putf("%ld", tpid);
        puts_(",\"cmdline\":[");
        snprintf(p, sizeof p, "/proc/%ld/cmdline", tpid);
        int fd = open(p, O_RDONLY); size_t n = 0; char *c = fd >= 0 ? slurp_fd(fd, &n) : NULL;
        if (fd >= 0) close(fd);
        for (size_t i = 0, s = 0; c && i < n; i++) if (c[i] == 0) { if (s) puts_(","); putstr(c + s, i - s); s = i + 1; }
        puts_("],\"root\":"); snprintf(p, sizeof p, "/proc/%ld/root", tpid); put_root(p);
        puts_(",\"ns\":"); snprintf(p, sizeof p, "/proc/%ld/ns", tpid); put_ns(p);
        puts_("}");
    } else puts_("null");
    puts_("}\n");
    int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) { fprintf(stderr, "hookrec: cannot open %s: %s\n", argv[1], strerror(errno)); return 121; }
    if (write(fd, buf, len) != (ssize_t)len) { fprintf(stderr, "hookrec: short write to %s\n", argv[1]); return 122; }
    close(fd);
    int code = 0;
    for (int i = 2; i < argc; i++) {
        if (!strncmp(argv[i], "exit=", 5)) code = atoi(argv[i] + 5);
        else if (!strncmp(argv[i], "sleep=", 6)) {
            struct timespec d = {atol(argv[i] + 6), 0};
            while (nanosleep(&d, &d) != 0 && errno == EINTR) {}
        } else if (!strcmp(argv[i], "pause")) {
            signal(SIGTERM, on_term); signal(SIGINT, on_term);
            for (;;) pause();
        }
    }
    if (code) fprintf(stderr, "hookrec %s: exiting with %d as told\n", argv[0], code);
    return code;
}
"""

_FLAGS = ("-static", "-O2", "-Wall")


def build_hookrec() -> Path:
    """The compiled static recorder, built once per source and cached (safe under xdist)."""
    digest = hashlib.sha256((SOURCE + " ".join(_FLAGS) + platform.machine()).encode()).hexdigest()[:16]
    folder = cache_dir() / "hookrec" / digest
    binary = folder / "hookrec"
    if binary.is_file():
        return binary
    compiler = os.environ.get("HARNESS_CC") or os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise HarnessError("cannot build the hook recorder: no C compiler (cc or gcc) found")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        src = Path(tmp) / "hookrec.c"
        src.write_text(SOURCE)
        out = Path(tmp) / "hookrec"
        proc = subprocess.run(
            [*compiler.split(), *_FLAGS, "-o", str(out), str(src)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            raise HarnessError(f"cannot build the hook recorder:\n{proc.stderr[-2000:]}")
        atomic.install(out, binary, mode=0o755)
    return binary


@dataclass
class Record:
    """One line of the log: one run of a hook (or of the container's own process)."""

    raw: dict[str, Any]

    @property
    def label(self) -> str:
        return self.raw["argv"][0]

    @property
    def kind(self) -> str:
        return self.label.split("-", 1)[0]

    @property
    def state(self) -> Any:
        """The state the runtime passed on stdin, parsed (a str if it is not JSON)."""
        try:
            return json.loads(self.raw["stdin"])
        except json.JSONDecodeError:
            return self.raw["stdin"]

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]


@dataclass
class HookSetup:
    """The hooks of one bundle and where their records go."""

    host_binary: Path  # the recorder on the host (runtime-namespace hook paths)
    log: Path  # the log as the host sees it: <rootfs>/hooks.log
    hooks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def records(self) -> list[Record]:
        if not self.log.exists():
            return []
        return [Record(json.loads(line)) for line in self.log.read_text().splitlines() if line.strip()]

    def labels(self) -> list[str]:
        return [r.label for r in self.records()]

    def by_label(self) -> dict[str, Record]:
        return {r.label: r for r in self.records()}

    def of_kind(self, kind: str) -> list[Record]:
        return [r for r in self.records() if r.kind == kind]

    def wait_for(self, label: str, timeout: float = 10.0) -> Record:
        """The record of ``label``, waiting for it with a deadline (hooks may run asynchronously)."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            found = self.by_label().get(label)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"hook {label!r} never ran within {timeout:g} s; the log holds {self.labels()}")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def hook_entry(
    setup: HookSetup, kind: str, index: int, *words: str, env: list[str] | None = None, timeout: int | None = None
) -> dict[str, Any]:
    """The config entry of one recorder hook labelled ``<kind>-<index>``.

    Its path is the host copy of the recorder, except for ``startContainer`` whose path resolves
    in the container (the copy in the root filesystem); the log path is chosen the same way.
    """
    inside = kind == "startContainer"
    entry: dict[str, Any] = {
        "path": IN_ROOTFS if inside else str(setup.host_binary),
        "args": [f"{kind}-{index}", LOG_IN_CONTAINER if inside else str(setup.log), *words],
        "env": env if env is not None else [f"HOOK_KIND={kind}", f"HOOK_INDEX={index}"],
    }
    if timeout is not None:
        entry["timeout"] = timeout
    return entry


def install(bundle: Any, tmp_path: Path) -> HookSetup:
    """Put the recorder into ``tmp_path`` (host side) and into the bundle's rootfs."""
    binary = build_hookrec()
    host_dir = tmp_path / "hookbin"
    host_dir.mkdir(exist_ok=True)
    host_copy = host_dir / "hookrec"
    if not host_copy.exists():
        shutil.copy2(binary, host_copy)
    rootfs = Path(bundle.rootfs)
    shutil.copy2(binary, rootfs / IN_ROOTFS.lstrip("/"))
    return HookSetup(host_binary=host_copy, log=rootfs / LOG_IN_CONTAINER.lstrip("/"))


def user_process(*words: str) -> list[str]:
    """The container's args: the recorder itself, labelled ``user``, logging from inside."""
    return [IN_ROOTFS, LOG_IN_CONTAINER, *words]


#: The label of the container's own process in the log (its argv[0]).
USER_LABEL = IN_ROOTFS
