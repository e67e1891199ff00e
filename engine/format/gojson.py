"""JSON as Go's ``encoding/json`` writes it, byte for byte: what ``{{json .}}`` and ``--format json`` print.

It differs from Python's ``json.dumps`` where a user would see it: floats (``3`` not ``3.0``,
``1e+21``), map keys sorted while struct fields keep their order, ``\\u2028``/``\\u2029`` escaped,
and — with ``escape_html`` (``json.Marshal``'s default; Docker's ``json`` template function turns it
off) — ``<``, ``>`` and ``&`` as ``\\u003c``, ``\\u003e``, ``\\u0026``::

    encode({"b": [1, 2.5], "a": "<x>"})                     -> '{"a":"<x>","b":[1,2.5]}'
    encode({"a": "<x>"}, escape_html=True)                   -> '{"a":"\\u003cx\\u003e"}'

No ``json`` import: the command line pays for nothing it does not print.
"""

from __future__ import annotations

import math

from engine.format.gofmt import GoMap, NilPointer, Struct, format_float, sorted_keys

_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def encode_string(s: str, escape_html: bool = False) -> str:
    """A JSON string literal as Go writes it."""
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s and \
            not (escape_html and ("<" in s or ">" in s or "&" in s)):
        return '"' + s + '"'
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif o < 0x20:
            out.append(f"\\u{o:04x}")
        elif escape_html and ch in _HTML:
            out.append(_HTML[ch])
        elif o == 0x2028 or o == 0x2029:
            out.append(f"\\u{o:04x}")
        elif 0xD800 <= o <= 0xDFFF:  # not valid UTF-8: Go writes the replacement character
            out.append("\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def encode_float(x: float) -> str:
    """Go's float encoding: shortest digits, fixed notation between 1e-6 and 1e21."""
    if math.isnan(x) or math.isinf(x):
        raise ValueError(f"json: unsupported value: {format_float(x)}")
    ax = abs(x)
    if ax != 0 and (ax < 1e-6 or ax >= 1e21):
        text = format_float(x, "e", -1)
        mant, _, exp = text.partition("e")
        sign, digits = exp[0], exp[1:].lstrip("0") or "0"
        return f"{mant}e{sign}{digits}"
    return format_float(x, "f", -1)


def encode(value, escape_html: bool = False, keep_order: bool = False) -> str:
    """The compact JSON of a template value (``None``, bool, int, float, str, list, dict, ``Struct``).

    A plain dict is a Go map, its keys sorted; ``keep_order`` keeps them in their order instead, as
    ``docker inspect --format json`` prints the daemon's objects."""
    parts: list[str] = []
    _encode(value, parts, escape_html, keep_order)
    return "".join(parts)


def encode_indent(value, indent: str = "    ") -> str:
    """JSON laid out as Go's ``json.MarshalIndent(v, "", indent)`` and ``docker inspect`` print it:
    one member a line, ``[]`` and ``{}`` when empty, object members in their order."""
    parts: list[str] = []
    _indent(value, parts, indent, 0)
    return "".join(parts)


def _indent(v, out: list[str], indent: str, level: int) -> None:
    if isinstance(v, Struct):
        v = v.marshal() if v.json_methods else v.fields
    if isinstance(v, dict) and v:
        out.append("{\n")
        keys = sorted(v, key=str) if isinstance(v, GoMap) else list(v)
        for i, k in enumerate(keys):
            out.append(indent * (level + 1))
            out.append(encode_string(str(k)))
            out.append(": ")
            _indent(v[k], out, indent, level + 1)
            out.append(",\n" if i < len(keys) - 1 else "\n")
        out.append(indent * level + "}")
    elif isinstance(v, (list, tuple)) and v:
        out.append("[\n")
        for i, x in enumerate(v):
            out.append(indent * (level + 1))
            _indent(x, out, indent, level + 1)
            out.append(",\n" if i < len(v) - 1 else "\n")
        out.append(indent * level + "]")
    else:
        _encode(v, out, False)


def _encode(v, out: list[str], escape_html: bool, keep_order: bool = False) -> None:
    if v is None or isinstance(v, NilPointer) or (isinstance(v, GoMap) and v.nil):
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, str):
        out.append(encode_string(v, escape_html))
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, float):
        out.append(encode_float(v))
    elif isinstance(v, Struct):
        fields = v.marshal()
        if v.json_methods:  # Docker's contexts marshal themselves with json.Marshal, which escapes HTML
            _object(fields, sorted_keys(fields), out, True, keep_order)
        else:
            _object(fields, list(fields), out, escape_html, keep_order)
    elif isinstance(v, GoMap):
        _object(v, sorted(v, key=str), out, escape_html, keep_order)
    elif isinstance(v, dict):
        _object(v, list(v) if keep_order else sorted(v, key=str), out, escape_html, keep_order)
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, x in enumerate(v):
            if i:
                out.append(",")
            _encode(x, out, escape_html, keep_order)
        out.append("]")
    else:
        raise ValueError(f"json: unsupported type: {type(v).__name__}")


def _object(m: dict, keys: list, out: list[str], escape_html: bool, keep_order: bool) -> None:
    out.append("{")
    for i, k in enumerate(keys):
        if i:
            out.append(",")
        out.append(encode_string(str(k), escape_html))
        out.append(":")
        _encode(m[k], out, escape_html, keep_order)
    out.append("}")
