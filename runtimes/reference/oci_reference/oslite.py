"""The part of `os` the create path uses, without importing `os`.

Importing `os` costs about 1.5 ms of CPU per process here (it builds `os.environ` and imports
`_collections_abc`, dozens of abstract classes), and `create` paid it in its own process and
again in the container's init.  The modules of the create path import this one as `os`
instead: the system calls are `posix`'s own functions (what `os` re-exports), and the few
helpers `os` adds in Python (`os.path.join` and its siblings, `os.makedirs`, `os.fsencode`)
are written out below for `str` paths, with the same results as `posixpath`'s.
"""

import posix as _posix
import sys
from posix import *  # noqa: F403  (the system calls and constants, as `os` has them)
from posix import _exit  # noqa: F401  (underscored: not in the star import)

_path_normpath = getattr(_posix, "_path_normpath", None)  # C; where missing, posixpath's own


class path:
    """os.path for `str` paths (the runtime passes no bytes or path objects)."""

    @staticmethod
    def join(a, *p):
        out = a
        for b in p:
            if b.startswith("/"):
                out = b
            elif not out or out.endswith("/"):
                out += b
            else:
                out += "/" + b
        return out

    @staticmethod
    def split(p):
        i = p.rfind("/") + 1
        head, tail = p[:i], p[i:]
        if head and head != "/" * len(head):
            head = head.rstrip("/")
        return head, tail

    @staticmethod
    def dirname(p):
        return path.split(p)[0]

    @staticmethod
    def basename(p):
        return p[p.rfind("/") + 1 :]

    @staticmethod
    def normpath(p):
        if _path_normpath is None:
            import posixpath

            return posixpath.normpath(p)
        return _path_normpath(p) or "."

    @staticmethod
    def abspath(p):
        if not p.startswith("/"):
            p = path.join(getcwd(), p)  # noqa: F405
        return path.normpath(p)

    @staticmethod
    def relpath(p, start):
        import posixpath  # rare (cgroup v2 subtree control): the real one

        return posixpath.relpath(p, start)

    @staticmethod
    def exists(p):
        try:
            stat(p)  # noqa: F405
        except (OSError, ValueError):
            return False
        return True

    @staticmethod
    def isdir(p):
        try:
            st = stat(p)  # noqa: F405
        except (OSError, ValueError):
            return False
        return st.st_mode & 0o170000 == 0o040000


def makedirs(name, mode=0o777, exist_ok=False):
    """os.makedirs: the missing parents (mode 0777 before the umask), then `name` itself."""
    head, tail = path.split(name)
    if not tail:
        head, tail = path.split(head)
    if head and tail and not path.exists(head):
        try:
            makedirs(head, exist_ok=exist_ok)
        except FileExistsError:
            pass  # made meanwhile by someone else
        if tail == ".":
            return
    try:
        mkdir(name, mode)  # noqa: F405
    except OSError:
        if not exist_ok or not path.isdir(name):
            raise


def fsencode(filename):
    if isinstance(filename, bytes):
        return filename
    return filename.encode(sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())
