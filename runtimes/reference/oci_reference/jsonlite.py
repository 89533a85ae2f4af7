"""JSON without importing the `json` package (which pulls in `re`, ~5 ms at start-up).

Decoding uses the C scanner from the `_json` accelerator directly; encoding is a tiny
recursive writer good for the plain data this runtime reads and writes.
"""

import _json


class _Context:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = None

    @staticmethod
    def parse_constant(name):
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


# typeshed types the context as `json.scanner.make_scanner` (the pure-Python scanner); the C
# scanner reads only the attributes above, and importing `json` to satisfy the stub is the cost
# this module exists to avoid.
_scan = _json.make_scanner(_Context())  # type: ignore[arg-type]
_WS = " \t\n\r"


class JSONError(ValueError):
    pass


def loads(text):
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    n = len(text)
    i = 0
    while i < n and text[i] in _WS:
        i += 1
    try:
        obj, end = _scan(text, i)
    except StopIteration as e:
        raise JSONError(f"invalid JSON at offset {e.value}") from None
    except ValueError as e:  # json.decoder.JSONDecodeError is a ValueError
        raise JSONError(str(e)) from None
    while end < n and text[end] in _WS:
        end += 1
    if end != n:
        raise JSONError(f"extra data at offset {end}")
    return obj


_enc_str = _json.encode_basestring_ascii


def _dump(obj, out, indent, level):
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, str):
        out.append(_enc_str(obj))
    elif isinstance(obj, int):
        out.append(int.__repr__(obj))
    elif isinstance(obj, float):
        out.append(float.__repr__(obj))
    elif isinstance(obj, dict):
        if not obj:
            out.append("{}")
            return
        if indent is None:
            out.append("{")
            first = True
            for k, v in obj.items():
                if not first:
                    out.append(",")
                first = False
                out.append(_enc_str(str(k)))
                out.append(":")
                _dump(v, out, None, 0)
            out.append("}")
        else:
            pad = "\n" + " " * (indent * (level + 1))
            out.append("{")
            first = True
            for k, v in obj.items():
                if not first:
                    out.append(",")
                first = False
                out.append(pad)
                out.append(_enc_str(str(k)))
                out.append(": ")
                _dump(v, out, indent, level + 1)
            out.append("\n" + " " * (indent * level) + "}")
    elif isinstance(obj, (list, tuple)):
        if not obj:
            out.append("[]")
            return
        if indent is None:
            out.append("[")
            for i, v in enumerate(obj):
                if i:
                    out.append(",")
                _dump(v, out, None, 0)
            out.append("]")
        else:
            pad = "\n" + " " * (indent * (level + 1))
            out.append("[")
            for i, v in enumerate(obj):
                if i:
                    out.append(",")
                out.append(pad)
                _dump(v, out, indent, level + 1)
            out.append("\n" + " " * (indent * level) + "]")
    else:
        raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def dumps(obj, indent=None):
    out = []
    _dump(obj, out, indent, 0)
    return "".join(out)
