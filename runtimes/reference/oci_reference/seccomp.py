"""linux.seccomp through libseccomp (libseccomp.so.2) loaded with ctypes.

`validate` checks the config (no library needed); `load` builds and installs the filter
in the calling process.  Without libseccomp, a config that asks for seccomp fails at create.
"""

from oci_reference.errors import ConfigError, RuntimeFailure

ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_NOTIFY": 0x7FC00000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
OPERATORS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}
ARCHES = {
    "SCMP_ARCH_X86": "x86",
    "SCMP_ARCH_X86_64": "x86_64",
    "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_ARM": "arm",
    "SCMP_ARCH_AARCH64": "aarch64",
    "SCMP_ARCH_MIPS": "mips",
    "SCMP_ARCH_MIPS64": "mips64",
    "SCMP_ARCH_MIPS64N32": "mips64n32",
    "SCMP_ARCH_MIPSEL": "mipsel",
    "SCMP_ARCH_MIPSEL64": "mipsel64",
    "SCMP_ARCH_MIPSEL64N32": "mipsel64n32",
    "SCMP_ARCH_PPC": "ppc",
    "SCMP_ARCH_PPC64": "ppc64",
    "SCMP_ARCH_PPC64LE": "ppc64le",
    "SCMP_ARCH_S390": "s390",
    "SCMP_ARCH_S390X": "s390x",
    "SCMP_ARCH_RISCV64": "riscv64",
}
FLAGS = {  # config flag -> libseccomp filter attribute
    "SECCOMP_FILTER_FLAG_TSYNC": 4,  # SCMP_FLTATR_CTL_TSYNC
    "SECCOMP_FILTER_FLAG_LOG": 6,  # SCMP_FLTATR_CTL_LOG
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 7,  # SCMP_FLTATR_CTL_SSB
}
SCMP_FLTATR_CTL_NNP = 3
EPERM = 1


_ERRNO_ACTIONS = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")


def _action(name, errno_ret, path, errno_path):
    if name not in ACTIONS:
        raise ConfigError(path, f"unknown seccomp action {name!r}")
    if errno_ret is not None and name not in _ERRNO_ACTIONS:
        # config-linux.md "Seccomp": an action that does not support an errno MUST fail
        raise ConfigError(errno_path, f"{name} returns no errno")
    a = ACTIONS[name]
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        a |= (EPERM if errno_ret is None else errno_ret) & 0xFFFF
    return a


def validate(sc):
    """Check linux.seccomp and return a plain description for `load`."""
    p = "linux.seccomp"

    def uint(v, path):
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ConfigError(path, "must be a non-negative integer")
        return v

    da = sc.get("defaultAction")
    if not isinstance(da, str):
        raise ConfigError(p + ".defaultAction", "is required and must be a string")
    if da == "SCMP_ACT_NOTIFY":
        raise ConfigError(p + ".defaultAction", "SCMP_ACT_NOTIFY cannot be the default action")
    out = {
        "default": _action(
            da, uint(sc.get("defaultErrnoRet"), p + ".defaultErrnoRet"), p + ".defaultAction", p + ".defaultErrnoRet"
        ),
        "arches": [],
        "flags": [],
        "rules": [],
        "listener": None,
        "metadata": "",
    }
    for i, a in enumerate(sc.get("architectures") or []):
        if a not in ARCHES:
            raise ConfigError(f"{p}.architectures[{i}]", f"unknown architecture {a!r}")
        out["arches"].append(ARCHES[a])
    for i, f in enumerate(sc.get("flags") or []):
        if f not in FLAGS:
            raise ConfigError(f"{p}.flags[{i}]", f"unsupported seccomp flag {f!r}")
        out["flags"].append(FLAGS[f])
    lp = sc.get("listenerPath")
    md = sc.get("listenerMetadata")
    if lp is not None and not isinstance(lp, str):
        raise ConfigError(p + ".listenerPath", "must be a string")
    if md is not None and not isinstance(md, str):
        raise ConfigError(p + ".listenerMetadata", "must be a string")
    if md and not lp:
        raise ConfigError(p + ".listenerMetadata", "must not be set without listenerPath")
    out["listener"] = lp or None
    out["metadata"] = md or ""
    for i, s in enumerate(sc.get("syscalls") or []):
        sp = f"{p}.syscalls[{i}]"
        if not isinstance(s, dict):
            raise ConfigError(sp, "must be an object")
        names = s.get("names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ConfigError(sp + ".names", "must be a non-empty array of strings")
        act = s.get("action")
        if not isinstance(act, str):
            raise ConfigError(sp + ".action", "is required and must be a string")
        action = _action(act, uint(s.get("errnoRet"), sp + ".errnoRet"), sp + ".action", sp + ".errnoRet")
        if act == "SCMP_ACT_NOTIFY" and not out["listener"]:
            raise ConfigError(sp + ".action", "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath")
        args = []
        for j, a in enumerate(s.get("args") or []):
            ap = f"{sp}.args[{j}]"
            if not isinstance(a, dict):
                raise ConfigError(ap, "must be an object")
            idx = uint(a.get("index"), ap + ".index")
            if idx is None or idx > 5:
                raise ConfigError(ap + ".index", "must be 0..5")
            op = a.get("op")
            if op not in OPERATORS:
                raise ConfigError(ap + ".op", f"unknown operator {op!r}")
            args.append(
                (
                    idx,
                    OPERATORS[op],
                    uint(a.get("value"), ap + ".value") or 0,
                    uint(a.get("valueTwo"), ap + ".valueTwo") or 0,
                )
            )
        out["rules"].append((names, action, args))
    return out


def available():
    import ctypes

    try:
        ctypes.CDLL("libseccomp.so.2")
        return True
    except OSError:
        return False


def load(desc, no_new_privs):
    build(desc, no_new_privs)()


def build(desc, no_new_privs):
    """Build the filter now (errors surface at create); return a function installing it."""
    import ctypes

    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError:
        raise RuntimeFailure("linux.seccomp is set but libseccomp.so.2 cannot be loaded") from None

    class ArgCmp(ctypes.Structure):
        _fields_ = [
            ("arg", ctypes.c_uint),
            ("op", ctypes.c_int),
            ("datum_a", ctypes.c_uint64),
            ("datum_b", ctypes.c_uint64),
        ]

    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = (ctypes.c_uint32,)
    lib.seccomp_release.argtypes = (ctypes.c_void_p,)
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.argtypes = (ctypes.c_char_p,)
    lib.seccomp_arch_add.argtypes = (ctypes.c_void_p, ctypes.c_uint32)
    lib.seccomp_syscall_resolve_name.argtypes = (ctypes.c_char_p,)
    lib.seccomp_rule_add_array.argtypes = (
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(ArgCmp),
    )
    lib.seccomp_attr_set.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32)
    lib.seccomp_load.argtypes = (ctypes.c_void_p,)
    lib.seccomp_notify_fd.argtypes = (ctypes.c_void_p,)

    ctx = lib.seccomp_init(desc["default"])
    if not ctx:
        raise RuntimeFailure("seccomp: seccomp_init failed")
    try:

        def check(rc, what):
            if rc < 0:
                import os

                raise RuntimeFailure(f"seccomp: {what}: {os.strerror(-rc)}")

        check(lib.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1 if no_new_privs else 0), "attr NNP")
        for attr in desc["flags"]:
            check(lib.seccomp_attr_set(ctx, attr, 1), f"flag {attr}")
        for a in desc["arches"]:
            token = lib.seccomp_arch_resolve_name(a.encode())
            if token == 0:
                raise RuntimeFailure(f"seccomp: architecture {a} unknown to libseccomp")
            rc = lib.seccomp_arch_add(ctx, token)
            if rc < 0 and rc != -17:  # -EEXIST: the native arch is already there
                check(rc, f"add architecture {a}")
        for names, action, args in desc["rules"]:
            if action == desc["default"]:
                continue
            indexes = [a[0] for a in args]
            # several conditions on one argument: one rule each (OR)
            groups = [args] if len(set(indexes)) == len(indexes) else [[a] for a in args]
            for name in names:
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr < 0:
                    continue  # unknown to this kernel/arch: skip, as other runtimes do
                for g in groups:
                    arr = (ArgCmp * max(len(g), 1))()
                    for k, (idx, op, va, vb) in enumerate(g):
                        arr[k].arg, arr[k].op, arr[k].datum_a, arr[k].datum_b = idx, op, va, vb
                    check(lib.seccomp_rule_add_array(ctx, action, nr, len(g), arr), f"rule for {name}")
    except BaseException:
        lib.seccomp_release(ctx)
        raise

    def install():
        """Load the filter; return the notification fd (or -1 without SCMP_ACT_NOTIFY)."""
        rc = lib.seccomp_load(ctx)
        if rc < 0:
            import os

            raise RuntimeFailure(f"seccomp: load: {os.strerror(-rc)}")
        if desc.get("listener"):
            fd = lib.seccomp_notify_fd(ctx)
            if fd < 0:
                import os

                raise RuntimeFailure(f"seccomp: no notification fd: {os.strerror(-fd)}")
            return fd
        return -1

    return install


def connect_agent(path):
    """Connect to the seccomp agent at listenerPath (at create, so that failing is an error
    before anything runs); the state and the fd are sent once the filter is loaded."""
    import _socket

    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise RuntimeFailure(f"linux.seccomp.listenerPath {path}: {e.strerror}") from None
    return s


def send_state(agent, fd, payload):
    """One container process state with the seccomp fd, then close (runtime.md: one per connection)."""
    import _socket
    import sys

    try:
        agent.sendmsg([payload], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fd.to_bytes(4, sys.byteorder))])
    except OSError as e:
        raise RuntimeFailure(f"linux.seccomp.listenerPath: sending the state failed: {e.strerror}") from None
    finally:
        agent.close()
        import os

        os.close(fd)
