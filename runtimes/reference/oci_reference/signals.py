"""Signal names for `kill` (x86_64 Linux numbering) without importing `signal`."""

from oci_reference.errors import RuntimeFailure

SIGNALS = {
    "HUP": 1,
    "INT": 2,
    "QUIT": 3,
    "ILL": 4,
    "TRAP": 5,
    "ABRT": 6,
    "IOT": 6,
    "BUS": 7,
    "FPE": 8,
    "KILL": 9,
    "USR1": 10,
    "SEGV": 11,
    "USR2": 12,
    "PIPE": 13,
    "ALRM": 14,
    "TERM": 15,
    "STKFLT": 16,
    "CHLD": 17,
    "CLD": 17,
    "CONT": 18,
    "STOP": 19,
    "TSTP": 20,
    "TTIN": 21,
    "TTOU": 22,
    "URG": 23,
    "XCPU": 24,
    "XFSZ": 25,
    "VTALRM": 26,
    "PROF": 27,
    "WINCH": 28,
    "IO": 29,
    "POLL": 29,
    "PWR": 30,
    "SYS": 31,
}
SIGRTMIN = 34
SIGRTMAX = 64


def parse(text):
    t = text.strip()
    if t.isdigit():
        n = int(t)
        if 0 < n <= SIGRTMAX:
            return n
        raise RuntimeFailure(f"invalid signal {text!r}")
    u = t.upper()
    if u.startswith("SIG"):
        u = u[3:]
    if u in SIGNALS:
        return SIGNALS[u]
    for base, num in (("RTMIN", SIGRTMIN), ("RTMAX", SIGRTMAX)):
        if u == base:
            return num
        if u.startswith((base + "+", base + "-")):
            try:
                off = int(u[len(base) :])
            except ValueError:
                break
            n = num + off
            if SIGRTMIN <= n <= SIGRTMAX:
                return n
    raise RuntimeFailure(f"invalid signal {text!r}")
