"""Go's values and Go's ``fmt``, as Docker's templates print them: ``%v`` of every value, ``printf``.

A template's data is plain Python: ``None`` is Go's nil, ``bool``, ``int``, ``float`` (float64),
``str``, ``list`` (a slice) and ``dict`` (a map) print as Go prints them::

    value_text([1, "x", True, None, 2.5])    -> "[1 x true <nil> 2.5]"
    value_text({"b": 2, "a": "x"})           -> "map[a:x b:2]"
    value_text(1000000.0)                    -> "1e+06"
    sprintf("%-5s|%05.1f|%q", "ab", 2.5, "hi") -> 'ab   |002.5|"hi"'

Three small types carry what plain Python cannot say: ``Struct`` (a Go struct: fields in order,
methods a template may call, a missing field is an error), ``GoMap`` (a map whose element type is
known, so that a missing key gives that type's zero value) and ``NilPointer`` (a typed nil that
prints ``<nil>``). This module imports nothing beyond the standard library, and nothing heavy.
"""

from __future__ import annotations

import math


# -- the types plain Python cannot express -------------------------------------------------------------


class Method:
    """A method of a ``Struct`` that takes arguments: ``Method(fn, "string")`` is ``func(string) T``."""

    __slots__ = ("fn", "params", "variadic")

    def __init__(self, fn, *params: str, variadic: bool = False):
        self.fn = fn
        self.params = params
        self.variadic = variadic


class Struct:
    """A Go struct: ``fields`` (name -> value, in order) and ``methods`` (name -> callable or ``Method``).

    ``type_name`` is what Go's error messages call it (``*formatter.ContainerContext``).
    ``json_methods``: ``json`` of it is the map of its argument-less methods, as Docker's
    formatter contexts marshal themselves; otherwise the fields in order.
    ``stringer``: a ``String()`` method, used by ``%v`` and ``%s``.
    """

    __slots__ = ("type_name", "fields", "methods", "json_methods", "stringer")

    def __init__(self, type_name: str, fields: dict | None = None, methods: dict | None = None, *,
                 json_methods: bool = False, stringer=None):
        self.type_name = type_name
        self.fields = fields if fields is not None else {}
        self.methods = methods if methods is not None else {}
        self.json_methods = json_methods
        self.stringer = stringer

    def __repr__(self) -> str:
        return f"Struct({self.type_name!r}, {self.fields!r})"

    def marshal(self) -> dict:
        """What ``json`` encodes: Docker's contexts give their argument-less methods, sorted by name."""
        if self.json_methods:
            return {name: (m() if callable(m) else m) for name, m in sorted(self.methods.items())
                    if not isinstance(m, Method)}
        return self.fields


class GoMap(dict):
    """A map with a known element type: ``GoMap(labels, "map[string]string", zero="")``.

    ``methods`` are a named map type's methods (Docker's table header map has ``Label``).
    """

    __slots__ = ("type_name", "zero", "methods", "nil")

    def __init__(self, items=(), type_name: str = "map[string]interface {}", zero=None, methods=None,
                 nil: bool = False):
        super().__init__(items)
        self.type_name = type_name
        self.zero = zero
        self.methods = methods or {}
        self.nil = nil  # a nil map: prints map[], encodes as null


class NilPointer:
    """A typed nil pointer (``*formatter.Platform(nil)``): prints ``<nil>``, is false, encodes as null."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"NilPointer({self.type_name!r})"


def go_type(v) -> str:
    """Go's ``%T`` of a value of a template's data."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, complex):
        return "complex128"
    if isinstance(v, str):
        return "string"
    if isinstance(v, GoMap):
        return v.type_name
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, (list, tuple)):
        return "[]interface {}" if not isinstance(v, StringList) else "[]string"
    if isinstance(v, (Struct, NilPointer)):
        return v.type_name
    if callable(v):
        return "func()"
    return type(v).__name__


class StringList(list):
    """A ``[]string`` (what ``split`` returns): ``%T`` says so."""

    __slots__ = ()


def is_true(v) -> bool:
    """Go's truth of a value (``if``, ``with``, ``and``, ``or``, ``not``): not the zero of its type."""
    if v is None or isinstance(v, NilPointer):
        return False
    if isinstance(v, (bool, int, float, complex)):
        return v != 0
    if isinstance(v, (str, list, tuple, dict)):
        return len(v) > 0
    return True  # structs, functions


# -- sorting map keys as Go's fmt and templates do -----------------------------------------------------


def _key_order(k):
    if k is None:
        return (0, 0)
    if isinstance(k, bool):
        return (1, k)
    if isinstance(k, (int, float)):
        return (2, k)
    if isinstance(k, str):
        return (3, k)
    return (4, str(k))


def sorted_keys(m: dict) -> list:
    """Keys in Go's ``fmtsort`` order: numbers by value, strings by bytes (code points)."""
    keys = list(m)
    try:
        keys.sort()
    except TypeError:
        keys.sort(key=_key_order)
    return keys


# -- quoting -------------------------------------------------------------------------------------------

_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _quote_with(s: str, quote: str, ascii_only: bool = False) -> str:
    if s.isascii() and s.isprintable() and quote not in s and "\\" not in s:
        return quote + s + quote
    out = [quote]
    for ch in s:
        o = ord(ch)
        if ch == quote or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable() and not (ascii_only and o >= 0x80):
            out.append(ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif 0xDC80 <= o <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape): Go shows the byte
            out.append(f"\\x{o - 0xDC00:02x}")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif 0xD800 <= o <= 0xDFFF:
            out.append("\\ufffd")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append(quote)
    return "".join(out)


def go_quote(s: str) -> str:
    """``strconv.Quote``: a double-quoted Go string literal."""
    return _quote_with(s, '"')


def quote_rune(r: int) -> str:
    """``strconv.QuoteRune``: a single-quoted Go rune literal."""
    if r < 0 or r > 0x10FFFF or 0xD800 <= r <= 0xDFFF:
        r = 0xFFFD
    return _quote_with(chr(r), "'")


# -- numbers -------------------------------------------------------------------------------------------


def _shortest_digits(x: float) -> tuple[str, int]:
    """The shortest decimal digits of a positive finite float and the decimal point: 0.d1d2… × 10^dp."""
    r = repr(x)
    exp = 0
    if "e" in r:
        r, e = r.split("e")
        exp = int(e)
    ip, _, fp = r.partition(".")
    digits = ip + fp
    stripped = digits.lstrip("0")
    dp = len(ip) + exp - (len(digits) - len(stripped))
    stripped = stripped.rstrip("0")
    if not stripped:
        return "0", 1
    return stripped, dp


def _exp_text(e: int) -> str:
    return ("e-" if e < 0 else "e+") + (f"{abs(e):02d}")


def format_float(x: float, fmt: str = "g", prec: int = -1) -> str:
    """``strconv.FormatFloat(x, fmt, prec, 64)`` for fmt in e, E, f, g, G (prec -1: shortest)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if prec >= 0:
        return f"%.{prec}{fmt}" % x  # C's printf and Go's agree once a precision is given
    neg = x < 0 or (x == 0 and math.copysign(1.0, x) < 0)
    ax = abs(x)
    if ax == 0:
        body = {"e": "0e+00", "E": "0E+00"}.get(fmt, "0")
        return ("-" if neg else "") + body
    digits, dp = _shortest_digits(ax)
    if fmt in "gG":
        exp = dp - 1
        if exp < -4 or exp >= 6:  # Go's rule for the shortest %g
            fmt = "e" if fmt == "g" else "E"
        else:
            fmt = "f"
    if fmt in "eE":
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        body = mant + _exp_text(dp - 1)
        if fmt == "E":
            body = body.upper()
    else:  # f: shortest digits, in fixed notation
        if dp <= 0:
            body = "0." + "0" * (-dp) + digits
        elif dp >= len(digits):
            body = digits + "0" * (dp - len(digits))
        else:
            body = digits[:dp] + "." + digits[dp:]
    return ("-" if neg else "") + body


def float_text(x: float) -> str:
    """``%v`` of a float64: 3 -> "3", 2.5 -> "2.5", 1e6 -> "1e+06", 1e21 -> "1e+21"."""
    return format_float(x, "g", -1)


# -- %v ------------------------------------------------------------------------------------------------


def value_text(v, verb: str = "v", plus: bool = False, depth: int = 0) -> str:
    """Go's ``fmt.Sprint(v)`` (verb ``v``); ``plus`` is ``%+v``. Nil inside a value is ``<nil>``."""
    if v is None:
        return "<nil>"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return float_text(v)
    if isinstance(v, dict):
        return "map[" + " ".join(f"{value_text(k, verb, plus, depth + 1)}:{value_text(v[k], verb, plus, depth + 1)}"
                                 for k in sorted_keys(v)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(value_text(x, verb, plus, depth + 1) for x in v) + "]"
    if isinstance(v, Struct):
        if v.stringer is not None:
            return v.stringer()
        if plus:
            return "{" + " ".join(f"{k}:{value_text(x, verb, plus, depth + 1)}" for k, x in v.fields.items()) + "}"
        return "{" + " ".join(value_text(x, verb, plus, depth + 1) for x in v.fields.values()) + "}"
    if isinstance(v, NilPointer):
        return "<nil>"
    if isinstance(v, complex):
        return f"({float_text(v.real)}{'+' if v.imag >= 0 or math.isnan(v.imag) else ''}{float_text(v.imag)}i)"
    if callable(v):
        return "0x0"
    return str(v)


def sprint(*args) -> str:
    """``fmt.Sprint``: a space between two operands when neither is a string."""
    out = []
    prev_string = False
    for i, a in enumerate(args):
        is_string = isinstance(a, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(value_text(a))
        prev_string = is_string
    return "".join(out)


def sprintln(*args) -> str:
    """``fmt.Sprintln``: spaces between all operands, and a newline."""
    return " ".join(value_text(a) for a in args) + "\n"


# -- printf --------------------------------------------------------------------------------------------


class _Flags:
    __slots__ = ("minus", "plus", "sharp", "space", "zero", "width", "prec", "plus_v")

    def __init__(self):
        self.minus = self.plus = self.sharp = self.space = self.zero = self.plus_v = False
        self.width = None
        self.prec = None


def _pad(text: str, f: _Flags, numeric: bool = False) -> str:
    if f.width is None or len(text) >= f.width:
        return text
    fill = f.width - len(text)
    if f.minus:
        return text + " " * fill
    if f.zero:
        if numeric and text[:1] in "+- ":
            return text[0] + "0" * fill + text[1:]
        return "0" * fill + text
    return " " * fill + text


def _bad_verb(verb: str, arg) -> str:
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type(arg)}={value_text(arg)})"


def _fmt_integer(n: int, verb: str, f: _Flags) -> str:
    if verb == "c":
        return _pad(chr(n) if 0 <= n <= 0x10FFFF else "\ufffd", f)
    if verb == "q":
        return _pad(quote_rune(n), f)
    if verb == "U":
        text = f"U+{n:04X}" if n >= 0 else f"U+{n & 0xFFFFFFFFFFFFFFFF:04X}"
        if f.sharp and 0 <= n <= 0x10FFFF and chr(n).isprintable():
            text += f" '{chr(n)}'"
        return _pad(text, f)
    base = {"v": 10, "d": 10, "b": 2, "o": 8, "O": 8, "x": 16, "X": 16}[verb]
    digits = {2: format(abs(n), "b"), 8: format(abs(n), "o"), 10: str(abs(n)),
              16: format(abs(n), "x" if verb == "x" else "X")}[base]
    if f.prec is not None:
        if f.prec == 0 and n == 0:
            digits = ""
        digits = digits.rjust(f.prec, "0")
    prefix = ""
    if verb == "O" or (f.sharp and base == 8 and not digits.startswith("0")):
        prefix = "0o" if verb == "O" else "0"
    elif f.sharp and base == 16:
        prefix = "0x" if verb == "x" else "0X"
    elif f.sharp and base == 2:
        prefix = "0b"
    sign = "-" if n < 0 else "+" if f.plus else " " if f.space else ""
    text = prefix + digits
    if f.zero and not f.minus and f.prec is None and f.width is not None:
        text = text.rjust(f.width - len(sign), "0")
    return _pad(sign + text, f)


def _fmt_float(x: float, verb: str, f: _Flags) -> str:
    if verb == "v":
        verb = "g"
    if verb in "xX":
        return _pad(_hex_float(x, verb, f.prec), f, numeric=True)
    if verb == "F":
        verb = "f"
    prec = f.prec if f.prec is not None else (-1 if verb in "gG" else 6)
    if math.isinf(x) or math.isnan(x):
        text = "NaN" if math.isnan(x) else ("+Inf" if x > 0 else "-Inf")
        if math.isinf(x) and x > 0 and not f.plus:
            text = " Inf" if f.space else "Inf"
        w = _Flags()
        w.width, w.minus = f.width, f.minus
        return _pad(text, w)
    text = format_float(x, verb, prec)
    if f.sharp and verb in "gG" and "." not in text and "e" not in text.lower():
        text += "."
    if text[0] != "-":
        if f.plus:
            text = "+" + text
        elif f.space:
            text = " " + text
    return _pad(text, f, numeric=True)


def _hex_float(x: float, verb: str, prec: int | None) -> str:
    """Go's %x of a float: 0x1.cp+01 (shortest mantissa, two exponent digits at least)."""
    if math.isinf(x) or math.isnan(x):
        return "NaN" if math.isnan(x) else ("+Inf" if x > 0 else "-Inf")
    text = float.hex(x)  # [-]0x1.c000000000000p+1
    sign = "-" if text.startswith("-") else ""
    mant, _, exp = text.lstrip("-")[2:].partition("p")
    whole, _, frac = mant.partition(".")
    frac = frac.rstrip("0")
    if prec is not None:
        frac = (frac + "0" * prec)[:prec]  # Go rounds; templates that need it are rare
    e = int(exp)
    body = f"0x{whole}" + (f".{frac}" if frac else "") + ("p-" if e < 0 else "p+") + f"{abs(e):02d}"
    return sign + (body.upper().replace("0X", "0X") if verb == "X" else body)


def _fmt_string(s: str, verb: str, f: _Flags) -> str:
    if f.prec is not None:
        s = s[: f.prec]
    if verb in "vs":
        return _pad(s, f)
    if verb == "q":
        if f.sharp and "`" not in s and all(c == "\t" or c.isprintable() for c in s):
            return _pad("`" + s + "`", f)
        return _pad(_quote_with(s, '"', ascii_only=f.plus), f)
    data = s.encode("utf-8", "surrogateescape")
    hexes = [format(b, "02x" if verb == "x" else "02X") for b in data]
    prefix = ("0x" if verb == "x" else "0X") if f.sharp else ""
    text = (" " if f.space else "").join(prefix + h for h in hexes) if f.space else prefix + "".join(hexes)
    return _pad(text, f)


def format_arg(arg, verb: str, f: _Flags | None = None, depth: int = 0) -> str:
    """One ``%verb`` of ``printf``, with its flags (``depth``: inside a list, map or struct)."""
    f = f or _Flags()
    if verb == "T":
        return _pad(go_type(arg), f)
    if arg is None:
        return _pad("<nil>", f) if verb == "v" or depth else _bad_verb(verb, None)
    if verb == "v" and f.sharp:
        return _pad(go_syntax(arg), f)
    if verb == "v" and f.plus:  # %+v: struct field names, and no signs on numbers
        g = _Flags()
        g.minus, g.sharp, g.space, g.zero, g.width, g.prec = f.minus, f.sharp, f.space, f.zero, f.width, f.prec
        g.plus_v = True
        f = g
    if isinstance(arg, bool):
        return _pad("true" if arg else "false", f) if verb in "tv" else _bad_verb(verb, arg)
    if isinstance(arg, int):
        return _fmt_integer(arg, verb, f) if verb in "vdboOxXcqU" else _bad_verb(verb, arg)
    if isinstance(arg, float):
        return _fmt_float(arg, verb, f) if verb in "veEfFgGxX" else _bad_verb(verb, arg)
    if isinstance(arg, str):
        return _fmt_string(arg, verb, f) if verb in "vsqxX" else _bad_verb(verb, arg)
    if isinstance(arg, Struct) and arg.stringer is not None and verb in "vsq":
        return _fmt_string(arg.stringer(), verb, f)
    if isinstance(arg, NilPointer):
        return _pad("<nil>", f)
    d = depth + 1
    if isinstance(arg, dict):
        return "map[" + " ".join(f"{format_arg(k, verb, f, d)}:{format_arg(arg[k], verb, f, d)}"
                                 for k in sorted_keys(arg)) + "]"
    if isinstance(arg, (list, tuple)):
        return "[" + " ".join(format_arg(x, verb, f, d) for x in arg) + "]"
    if isinstance(arg, Struct):
        if f.plus_v and verb == "v":
            return "{" + " ".join(f"{k}:{format_arg(x, verb, f, d)}" for k, x in arg.fields.items()) + "}"
        return "{" + " ".join(format_arg(x, verb, f, d) for x in arg.fields.values()) + "}"
    if verb == "v":
        return _pad(value_text(arg), f)
    return _bad_verb(verb, arg)


def go_syntax(v) -> str:
    """``%#v``: the value as Go source (``"s"``, ``[]interface {}{1, "x"}``)."""
    if v is None:
        return "<nil>"
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, (bool, int)):
        return value_text(v)
    if isinstance(v, float):
        text = float_text(v)
        return text
    if isinstance(v, dict):
        return go_type(v) + "{" + ", ".join(f"{go_syntax(k)}:{go_syntax(v[k])}" for k in sorted_keys(v)) + "}"
    if isinstance(v, (list, tuple)):
        return go_type(v) + "{" + ", ".join(go_syntax(x) for x in v) + "}"
    if isinstance(v, Struct):
        return v.type_name.lstrip("*") + "{" + ", ".join(f"{k}:{go_syntax(x)}" for k, x in v.fields.items()) + "}"
    if isinstance(v, NilPointer):
        return f"({v.type_name})(nil)"
    return value_text(v)


_MAX_WIDTH = 1_000_000  # Go's fmt refuses wider widths and precisions (tooLarge)


def _parse_number(fmt: str, i: int) -> tuple[int | None, int]:
    """Go's ``parsenum``: (the number at i or None, the index after it); index -1 when it is too large."""
    num = None
    while i < len(fmt) and "0" <= fmt[i] <= "9":
        if num is not None and num > _MAX_WIDTH:
            return None, -1
        num = (num or 0) * 10 + ord(fmt[i]) - 48
        i += 1
    return num, i


def sprintf(fmt: str, *args) -> str:
    """Go's ``fmt.Sprintf``: verbs ``v s q d b o O x X c U e E f F g G t T %``, flags ``-+# 0``,
    width and precision (``*`` too), ``[n]`` argument indexes, and Go's ``%!d(string=x)``,
    ``%!d(MISSING)`` and ``%!(EXTRA …)`` for what does not fit."""
    out: list[str] = []
    n = len(fmt)
    argnum = 0
    reordered = False
    i = 0
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        f = _Flags()
        while i < n and fmt[i] in "#0+- ":
            c = fmt[i]
            if c == "#":
                f.sharp = True
            elif c == "0":
                f.zero = True
            elif c == "+":
                f.plus = True
            elif c == "-":
                f.minus = True
            else:
                f.space = True
            i += 1

        def index(i: int, argnum: int):
            if i < n and fmt[i] == "[":  # Go: any [n] turns off the EXTRA report
                close = fmt.find("]", i)
                if close < 0 or not fmt[i + 1:close].isdigit() or not 1 <= int(fmt[i + 1:close]) <= len(args):
                    return (close + 1 if close >= 0 else n), argnum, True, True
                return close + 1, int(fmt[i + 1:close]) - 1, True, False
            return i, argnum, False, False

        i, argnum, moved, bad_index = index(i, argnum)
        reordered = reordered or moved
        if i < n and fmt[i] == "*":
            i += 1
            if argnum < len(args) and isinstance(args[argnum], int) and not isinstance(args[argnum], bool) \
                    and abs(args[argnum]) <= _MAX_WIDTH:
                f.width = args[argnum]
                if f.width < 0:
                    f.minus, f.width = True, -f.width
            else:
                out.append("%!(BADWIDTH)")
            argnum += 1
        else:
            width, i = _parse_number(fmt, i)
            if i < 0:  # a crazy long number: Go gives up on the verb
                out.append("%!(NOVERB)")
                break
            f.width = width
        if i < n and fmt[i] == ".":
            i += 1
            i, argnum, moved, bad = index(i, argnum)
            bad_index = bad_index or bad
            reordered = reordered or moved
            if i < n and fmt[i] == "*":
                i += 1
                if argnum < len(args) and isinstance(args[argnum], int) and not isinstance(args[argnum], bool) \
                        and 0 <= args[argnum] <= _MAX_WIDTH:
                    f.prec = args[argnum]
                else:
                    out.append("%!(BADPREC)")
                argnum += 1
            else:
                prec, i = _parse_number(fmt, i)
                if i < 0:
                    out.append("%!(NOVERB)")
                    break
                f.prec = prec or 0
        i, argnum, moved, bad = index(i, argnum)
        bad_index = bad_index or bad
        reordered = reordered or moved
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
        elif bad_index:
            out.append(f"%!{verb}(BADINDEX)")
        elif argnum >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            out.append(format_arg(args[argnum], verb, f))
            argnum += 1
    if not reordered and argnum < len(args):
        out.append("%!(EXTRA " + ", ".join("<nil>" if a is None else f"{go_type(a)}={value_text(a)}"
                                           for a in args[argnum:]) + ")")
    return "".join(out)
