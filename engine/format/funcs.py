"""The functions a template may call: Go's builtins and Docker's (``docker/cli`` ``templates.go``).

Each is a ``Function``: a Python callable and its Go signature, which the executor checks as Go
does (``wrong type for value; expected string; got float64``). A function fails with
``CallError``; the template then fails with ``error calling NAME: …``::

    DOCKER_FUNCS["join"]     join LIST SEP      ("a,b"; any list, as Docker 28.3's)
    DOCKER_FUNCS["truncate"] truncate S N       (the first N bytes)
    HEADER_FUNCS             what a table's header line runs instead (column names stay as they are)
"""

from __future__ import annotations

from engine.format import gofmt
from engine.format.gofmt import GoMap, Method, NilPointer, StringList, Struct, go_type, is_true


class CallError(Exception):
    """Raised by a template function: the template fails with ``error calling NAME: <message>``."""


class Function:
    """A template function: ``fn`` and Go's signature (``params``: "any", "string", "int", "[]string")."""

    __slots__ = ("fn", "params", "variadic", "builtin")

    def __init__(self, fn, *params: str, variadic: bool = False, builtin: bool = False):
        self.fn, self.params, self.variadic, self.builtin = fn, params, variadic, builtin


# -- Go's builtins ------------------------------------------------------------------------------------------


def _index(item, *indices):
    if item is None:
        raise CallError("index of untyped nil")
    v = item
    for i in indices:
        if v is None or isinstance(v, NilPointer):
            raise CallError("index of nil pointer")
        if isinstance(v, (list, tuple, str)):
            if not isinstance(i, int) or isinstance(i, bool):
                raise CallError(f"cannot index slice/array with type {go_type(i)}")
            seq = v.encode("utf-8", "surrogateescape") if isinstance(v, str) and not v.isascii() else v
            if i < 0 or i >= len(seq):
                raise CallError(f"index out of range: {i}")
            v = seq[i] if not isinstance(seq, str) else ord(seq[i])
        elif isinstance(v, dict):
            if i is None:
                i = ""
            if not isinstance(i, str):
                raise CallError(f"value has type {go_type(i)}; should be string")
            v = v[i] if i in v else (v.zero if isinstance(v, GoMap) else None)
        else:
            raise CallError(f"can't index item of type {go_type(v)}")
    return v


def _slice(item, *indices):
    if item is None:
        raise CallError("slice of untyped nil")
    if len(indices) > 3:
        raise CallError(f"too many slice indexes: {len(indices)}")
    if not isinstance(item, (list, tuple, str)):
        raise CallError(f"can't slice item of type {go_type(item)}")
    if isinstance(item, str) and len(indices) == 3:
        raise CallError("cannot 3-index slice a string")
    seq = item.encode("utf-8", "surrogateescape") if isinstance(item, str) and not item.isascii() else item
    cap = len(seq)
    idx = [0, len(seq), cap]
    for k, i in enumerate(indices):
        if not isinstance(i, int) or isinstance(i, bool):
            raise CallError(f"cannot index slice/array with type {go_type(i)}")
        if i < 0 or i > cap:
            raise CallError(f"index out of range: {i}")
        idx[k] = i
    if idx[0] > idx[1]:
        raise CallError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indices) == 3 and idx[1] > idx[2]:
        raise CallError(f"invalid slice index: {idx[1]} > {idx[2]}")
    out = seq[idx[0]:idx[1]]
    if isinstance(out, bytes):
        return out.decode("utf-8", "surrogateescape")
    return list(out) if isinstance(out, tuple) else out


def _len(item):
    if item is None or isinstance(item, NilPointer):
        raise CallError("len of nil pointer")
    if isinstance(item, str):
        return len(item) if item.isascii() else len(item.encode("utf-8", "surrogateescape"))
    if isinstance(item, (list, tuple, dict)):
        return len(item)
    raise CallError(f"len of type {go_type(item)}")


_KIND_BOOL, _KIND_INT, _KIND_FLOAT, _KIND_COMPLEX, _KIND_STRING = 1, 2, 3, 4, 5


def _basic_kind(v) -> int:
    if isinstance(v, bool):
        return _KIND_BOOL
    if isinstance(v, int):
        return _KIND_INT
    if isinstance(v, float):
        return _KIND_FLOAT
    if isinstance(v, complex):
        return _KIND_COMPLEX
    if isinstance(v, str):
        return _KIND_STRING
    return 0


def _eq(arg1, *others):
    if not others:
        raise CallError("missing argument for comparison")
    k1 = _basic_kind(arg1)
    for arg in others:
        k2 = _basic_kind(arg)
        if k1 != k2:
            if arg1 is not None and arg is not None:
                raise CallError("incompatible types for comparison")
            truth = False
        elif k1 == 0:
            if arg1 is None or arg is None or isinstance(arg1, NilPointer) or isinstance(arg, NilPointer):
                truth = (arg1 is None or isinstance(arg1, NilPointer)) == (arg is None or isinstance(arg, NilPointer))
            elif isinstance(arg1, (list, tuple, dict)):
                raise CallError(f"non-comparable type {gofmt.format_arg(arg1, 's')}: {go_type(arg1)}")
            elif isinstance(arg, (list, tuple, dict)):
                raise CallError(f"non-comparable type {gofmt.format_arg(arg, 's')}: {go_type(arg)}")
            elif go_type(arg1) != go_type(arg):
                raise CallError(f"non-comparable types {gofmt.format_arg(arg1, 's')}: {go_type(arg1)}, "
                                f"{go_type(arg)}: {gofmt.value_text(arg)}")
            else:
                truth = arg1 is arg or (isinstance(arg1, Struct) and arg1.fields == arg.fields)
        else:
            truth = arg1 == arg
        if truth:
            return True
    return False


def _lt(a, b):
    ka, kb = _basic_kind(a), _basic_kind(b)
    if ka == 0 or kb == 0:
        raise CallError("invalid type for comparison")
    if ka != kb:
        raise CallError("incompatible types for comparison")
    if ka in (_KIND_BOOL, _KIND_COMPLEX):
        raise CallError("invalid type for comparison")
    return a < b


def _le(a, b):
    return _lt(a, b) or _eq(a, b)


def _html(*args) -> str:
    s = _eval_args(args)
    return (s.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&#34;").replace("\x00", "\ufffd"))


def _js(*args) -> str:
    s = _eval_args(args)
    out = []
    for ch in s:
        o = ord(ch)
        if ch in "\\'\"":
            out.append("\\" + ch)
        elif ch == "<":
            out.append("\\u003C")
        elif ch == ">":
            out.append("\\u003E")
        elif ch == "&":
            out.append("\\u0026")
        elif ch == "=":
            out.append("\\u003D")
        elif o < 0x20:
            out.append(f"\\u{o:04X}")
        elif o >= 0x80 and not ch.isprintable():
            out.append(f"\\u{o:04X}")
        else:
            out.append(ch)
    return "".join(out)


def _urlquery(*args) -> str:
    from urllib.parse import quote_plus

    return quote_plus(_eval_args(args), safe="")


def _eval_args(args) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return gofmt.sprint(*args)


def call_function(callee: str, fn, *args):
    if fn is None:
        raise CallError("call of nil")
    if isinstance(fn, Method):
        fn = fn.fn
    if not callable(fn) or isinstance(fn, (Struct, GoMap)):
        raise CallError(f"non-function {callee} of type {go_type(fn)}")
    try:
        return fn(*args)
    except TypeError as exc:
        raise CallError(f"wrong number of args: {exc}") from None


def _not(v) -> bool:
    return not is_true(v)


BUILTINS: dict[str, Function] = {
    "and": Function(None, "any", "any", variadic=True, builtin=True),
    "or": Function(None, "any", "any", variadic=True, builtin=True),
    "not": Function(_not, "any", builtin=True),
    "call": Function(None, "any", "any", variadic=True, builtin=True),
    "html": Function(_html, "any", variadic=True, builtin=True),
    "js": Function(_js, "any", variadic=True, builtin=True),
    "urlquery": Function(_urlquery, "any", variadic=True, builtin=True),
    "index": Function(_index, "any", "any", variadic=True, builtin=True),
    "slice": Function(_slice, "any", "any", variadic=True, builtin=True),
    "len": Function(_len, "any", builtin=True),
    "print": Function(gofmt.sprint, "any", variadic=True, builtin=True),
    "printf": Function(gofmt.sprintf, "string", "any", variadic=True, builtin=True),
    "println": Function(gofmt.sprintln, "any", variadic=True, builtin=True),
    "eq": Function(_eq, "any", "any", variadic=True, builtin=True),
    "ne": Function(lambda a, b: not _eq(a, b), "any", "any", builtin=True),
    "lt": Function(_lt, "any", "any", builtin=True),
    "le": Function(_le, "any", "any", builtin=True),
    "gt": Function(lambda a, b: not _le(a, b), "any", "any", builtin=True),
    "ge": Function(lambda a, b: not _lt(a, b), "any", "any", builtin=True),
}


# -- Docker's functions (docker/cli templates/templates.go) -----------------------------------------------


def _json(v) -> str:
    from engine.format.gojson import encode

    try:
        return encode(v)
    except ValueError as exc:
        raise CallError(str(exc)) from None


def _split(s: str, sep: str) -> list[str]:
    if sep == "":
        return StringList(s)
    return StringList(s.split(sep))


def _join(elems, sep: str) -> str:
    if elems is None:
        return ""
    if isinstance(elems, dict):
        return sep.join(sorted(gofmt.value_text(v) for v in elems.values()))
    if all(isinstance(e, str) for e in elems):
        return sep.join(elems)
    return sep.join(gofmt.value_text(e) for e in elems)


def _title(s: str) -> str:
    """Go's ``strings.Title``: the first letter of every word upper-cased, the rest left alone."""
    out = []
    prev = " "
    for ch in s:
        if _is_separator(prev):
            t = ch.title()
            out.append(t if len(t) == 1 else _simple_upper(ch))
        else:
            out.append(ch)
        prev = ch
    return "".join(out)


def _is_separator(ch: str) -> bool:
    if ord(ch) < 0x80:
        return not (ch.isalnum() or ch == "_")
    if ch.isalpha() or ch.isdigit():
        return False
    return ch.isspace()


def _pad(s: str, prefix: int, suffix: int) -> str:
    if s == "":
        return s
    if prefix < 0 or suffix < 0:
        raise CallError("strings: negative Repeat count")
    return " " * prefix + s + " " * suffix


def _truncate(s: str, length: int) -> str:
    data = s if s.isascii() else s.encode("utf-8", "surrogateescape")
    if len(data) < length:
        return s
    if length < 0:
        raise CallError(f"slice bounds out of range [:{length}]")
    out = data[:length]
    return out if isinstance(out, str) else out.decode("utf-8", "surrogateescape")


def _simple_upper(ch: str) -> str:
    u = ch.upper()
    return u if len(u) == 1 else ch  # Go maps rune to rune: "ß" stays "ß"


def _simple_lower(ch: str) -> str:
    if ch == "\u0130":
        return "i"
    low = ch.lower()
    return low if len(low) == 1 else ch


def _upper(s: str) -> str:
    return s.upper() if s.isascii() else "".join(_simple_upper(c) for c in s)


def _lower(s: str) -> str:
    return s.lower() if s.isascii() else "".join(_simple_lower(c) for c in s)


DOCKER_FUNCS: dict[str, Function] = {
    **BUILTINS,
    "json": Function(_json, "any"),
    "split": Function(_split, "string", "string"),
    "join": Function(_join, "[]string", "string"),
    "title": Function(_title, "string"),
    "lower": Function(_lower, "string"),
    "upper": Function(_upper, "string"),
    "pad": Function(_pad, "string", "int", "int"),
    "truncate": Function(_truncate, "string", "int"),
}

# A table's header line runs the same template over the column names, with these in place of
# Docker's functions, so that "{{.Names | upper}}" is headed NAMES, not changed (HeaderFunctions).
HEADER_FUNCS: dict[str, Function] = {
    **DOCKER_FUNCS,
    "json": Function(lambda v: v, "string"),
    "split": Function(lambda v, _sep: v, "string", "string"),
    "join": Function(lambda v, _sep: v, "string", "string"),
    "title": Function(lambda v: v, "string"),
    "lower": Function(lambda v: v, "string"),
    "upper": Function(lambda v: v, "string"),
    "truncate": Function(lambda v, _n: v, "string", "int"),
}


