"""Process attributes applied by the container init right before it blocks for `start`:
rlimits, oom_score_adj, identity, capabilities, no_new_privs, cwd, and finding args[0]."""

import _stat as stat  # the C module that `stat` re-exports, without its Python layer

from oci_reference import caps, linux
from oci_reference import oslite as os  # not `os` itself: see oslite
from oci_reference.config import DEFAULT_PATH
from oci_reference.errors import RuntimeFailure


def env_path(env):
    for e in env:
        if e.startswith("PATH="):
            return e[5:]
    return DEFAULT_PATH


def find_executable(name, env):
    """Resolve args[0] like execvp, with PATH from the process's own env (in the container)."""

    def ok(p):
        try:
            st = os.stat(p)
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and os.access(p, os.X_OK)

    if "/" in name:
        if ok(name):
            return name
        if os.path.exists(name):
            raise RuntimeFailure(f"process.args[0] {name}: not an executable file")
        raise RuntimeFailure(f"process.args[0] {name}: no such file or directory")
    for d in env_path(env).split(":"):
        cand = os.path.join(d or ".", name)
        if ok(cand):
            return cand
    raise RuntimeFailure(f"process.args[0] {name}: executable file not found in $PATH")


def set_rlimits(rlimits):
    """config.md "POSIX process" rlimits, with prlimit(2) through `linux` (no `resource` module to
    load before pivot_root)."""
    for num, soft, hard in rlimits:
        inf = linux.RLIM_INFINITY
        s = inf if soft >= inf else soft
        h = inf if hard >= inf else hard
        try:
            linux.prlimit(num, (s, h))
        except OSError as e:
            raise RuntimeFailure(f"process.rlimits: setrlimit({num}): {os.strerror(e.errno)}") from None


def set_oom_score_adj(value):
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError as e:
        raise RuntimeFailure(f"process.oomScoreAdj: {e.strerror}") from None


def set_identity_and_caps(p, last_cap):
    """setgroups/setresgid/setresuid keeping capabilities, then the five capability sets."""
    cset = p["capabilities"]
    if cset is not None:
        for n in (name for s in caps.CAP_SETS for name in cset[s]):
            if caps.CAPABILITIES[n] > last_cap:
                raise RuntimeFailure(f"process.capabilities: {n} is not known to this kernel")
        keep = caps.mask(cset["bounding"])
        for c in range(last_cap + 1):
            if not keep & (1 << c):
                linux.prctl(linux.PR_CAPBSET_DROP, c)
    linux.prctl(linux.PR_SET_KEEPCAPS, 1)
    try:
        os.setgroups(p["additionalGids"])
    except OSError as e:
        # setgroups is denied in a user namespace with setgroups=deny; only fine if empty
        if p["additionalGids"]:
            raise RuntimeFailure(f"process.user.additionalGids: setgroups: {e.strerror}") from None
    try:
        os.setresgid(p["gid"], p["gid"], p["gid"])
        os.setresuid(p["uid"], p["uid"], p["uid"])
    except OSError as e:
        raise RuntimeFailure(f"process.user: cannot switch to uid {p['uid']} gid {p['gid']}: {e.strerror}") from None
    linux.prctl(linux.PR_SET_KEEPCAPS, 0)
    if cset is not None:
        linux.capset(caps.mask(cset["effective"]), caps.mask(cset["permitted"]), caps.mask(cset["inheritable"]))
        linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
        for n in cset["ambient"]:
            try:
                linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_RAISE, caps.CAPABILITIES[n], 0, 0)
            except OSError:
                # the kernel only allows ambient capabilities that are also permitted and
                # inheritable; like runc, a cap outside those sets is skipped, not fatal
                pass
    elif p["uid"] != 0:
        pass  # no capabilities object: the kernel's rules for a uid change apply


def chdir(cwd):
    try:
        os.chdir(cwd)
    except OSError as e:
        raise RuntimeFailure(f"process.cwd {cwd}: {e.strerror}") from None


def env_dict(env):
    out = {}
    for e in env:
        k, _, v = e.partition("=")
        if k:
            out[k] = v
    return out
