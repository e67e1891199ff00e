"""Go's template lexer and literals (``text/template/parse/lex.go``, ``strconv``): text to tokens.

``Lexer(text).items`` is the whole token list; a token the lexer cannot read ends the list with an
``ERROR`` item carrying Go's message (``unclosed action``, ``bad character U+007D '}'``), which the
parser reports when it reaches it, as Go's does. ``unquote`` and ``Number`` read Go's string, rune
and number literals (``"a\\tb"``, ``'x'``, ``0x1F``, ``1_000``, ``1e3``) with Go's errors.
"""

from __future__ import annotations

from engine.errors import InvalidArgument
from engine.format import gofmt


class TemplateError(InvalidArgument):
    """A template that does not parse, or an execution that failed: Go's message, as Docker shows it."""


class TemplateParseError(TemplateError):
    """The template text itself is wrong (Docker's ``inspect`` exits 64 for it, not 1)."""


# -- lexing --------------------------------------------------------------------------------------------

(ERROR, BOOL, CHAR, CHARCONST, COMPLEX, ASSIGN, DECLARE, EOF, FIELD, IDENT, LDELIM, LPAREN, NUMBER,
 PIPE, RAWSTRING, RDELIM, RPAREN, SPACE, STRING, TEXT, VARIABLE, KEYWORD, BLOCK, BREAK, CONTINUE, DOT,
 DEFINE, ELSE, END, IF, NIL, RANGE, TEMPLATE, WITH) = range(34)

KEYWORDS = {".": DOT, "block": BLOCK, "break": BREAK, "continue": CONTINUE, "define": DEFINE, "else": ELSE,
            "end": END, "if": IF, "range": RANGE, "nil": NIL, "template": TEMPLATE, "with": WITH}
SPACES = " \t\r\n"


class Item:
    __slots__ = ("typ", "pos", "val", "line")

    def __init__(self, typ: int, pos: int, val: str, line: int):
        self.typ, self.pos, self.val, self.line = typ, pos, val, line

    def __str__(self) -> str:
        if self.typ == EOF:
            return "EOF"
        if self.typ == ERROR:
            return self.val
        if self.typ > KEYWORD:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return gofmt.go_quote(self.val[:10]) + "..."
        return gofmt.go_quote(self.val)


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


def _unicode_name(ch: str) -> str:
    """Go's ``%#U``: ``U+0023 '#'``."""
    o = ord(ch)
    return f"U+{o:04X} '{ch}'" if ch.isprintable() else f"U+{o:04X}"


class Lexer:
    """Go's template lexer (``text/template/parse/lex.go``), eager: ``items`` is the whole token list."""

    def __init__(self, text: str):
        self.input = text
        self.pos = 0
        self.start = 0
        self.paren_depth = 0
        self.items: list[Item] = []
        self._line_at = (0, 1)  # (position, its line): lines are counted forward from the last item
        state = self.lex_text
        while state is not None:
            state = state()

    def line_of(self, pos: int) -> int:
        at, line = self._line_at
        if pos < at:
            at, line = 0, 1
        line += self.input.count("\n", at, pos)
        self._line_at = (pos, line)
        return line

    # primitives
    def next(self) -> str:
        self.pos += 1
        return self.input[self.pos - 1] if self.pos <= len(self.input) else ""

    def backup(self) -> None:
        self.pos -= 1

    def peek(self) -> str:
        return self.input[self.pos] if self.pos < len(self.input) else ""

    def emit(self, typ: int) -> None:
        self.items.append(Item(typ, self.start, self.input[self.start:self.pos], self.line_of(self.start)))
        self.start = self.pos

    def ignore(self) -> None:
        self.start = self.pos

    def errorf(self, message: str):
        self.items.append(Item(ERROR, self.start, message, self.line_of(self.start)))
        return None

    def accept(self, valid: str) -> bool:
        if self.pos < len(self.input) and self.input[self.pos] in valid:
            self.pos += 1
            return True
        return False

    def accept_run(self, valid: str) -> None:
        while self.pos < len(self.input) and self.input[self.pos] in valid:
            self.pos += 1

    # states
    def lex_text(self):
        x = self.input.find("{{", self.pos)
        if x >= 0:
            self.pos = x
            trim = 0
            if _left_trim(self.input, x + 2):
                text = self.input[self.start:self.pos]
                trim = len(text) - len(text.rstrip(SPACES))
            self.pos -= trim
            if self.pos > self.start:
                self.emit(TEXT)
            self.pos += trim
            self.ignore()
            return self.lex_left_delim
        self.pos = len(self.input)
        if self.pos > self.start:
            self.emit(TEXT)
        self.emit(EOF)
        return None

    def at_right_delim(self) -> tuple[bool, bool]:
        if self.input.startswith("}}", self.pos):
            return True, False
        if _right_trim(self.input, self.pos) and self.input.startswith("}}", self.pos + 2):
            return True, True
        return False, False

    def lex_left_delim(self):
        self.pos += 2
        trim = _left_trim(self.input, self.pos)
        after = 2 if trim else 0
        if self.input.startswith("/*", self.pos + after):
            self.pos += after
            self.ignore()
            return self.lex_comment
        self.emit(LDELIM)
        self.pos += after
        self.ignore()
        self.paren_depth = 0
        return self.lex_inside_action

    def lex_comment(self):
        self.pos += 2
        i = self.input.find("*/", self.pos)
        if i < 0:
            return self.errorf("unclosed comment")
        self.pos = i + 2
        delim, trim = self.at_right_delim()
        if not delim:
            return self.errorf("comment ends before closing delimiter")
        if trim:
            self.pos += 2
        self.pos += 2
        if trim:
            self.pos += _left_trim_length(self.input, self.pos)
        self.ignore()
        return self.lex_text

    def lex_right_delim(self):
        _, trim = self.at_right_delim()
        if trim:
            self.pos += 2
            self.ignore()
        self.pos += 2
        self.emit(RDELIM)
        if trim:
            self.pos += _left_trim_length(self.input, self.pos)
            self.ignore()
        return self.lex_text

    def lex_inside_action(self):
        delim, _ = self.at_right_delim()
        if delim:
            if self.paren_depth == 0:
                return self.lex_right_delim
            return self.errorf("unclosed left paren")
        ch = self.next()
        if ch == "":
            return self.errorf("unclosed action")
        if ch in SPACES:
            self.backup()
            return self.lex_space
        if ch == "=":
            self.emit(ASSIGN)
        elif ch == ":":
            if self.next() != "=":
                return self.errorf("expected :=")
            self.emit(DECLARE)
        elif ch == "|":
            self.emit(PIPE)
        elif ch == '"':
            return self.lex_quote
        elif ch == "`":
            return self.lex_raw_quote
        elif ch == "$":
            return self.lex_variable
        elif ch == "'":
            return self.lex_char
        elif ch == "." and self.pos < len(self.input) and not ("0" <= self.input[self.pos] <= "9"):
            return self.lex_field
        elif ch in "+-." or "0" <= ch <= "9":
            self.backup()
            return self.lex_number
        elif _is_alnum(ch):
            self.backup()
            return self.lex_identifier
        elif ch == "(":
            self.emit(LPAREN)
            self.paren_depth += 1
        elif ch == ")":
            self.paren_depth -= 1
            if self.paren_depth < 0:
                return self.errorf("unexpected right paren")
            self.emit(RPAREN)
        elif ord(ch) < 0x80 and ch.isprintable():
            self.emit(CHAR)
        else:
            return self.errorf(f"unrecognized character in action: {_unicode_name(ch)}")
        return self.lex_inside_action

    def lex_space(self):
        spaces = 0
        while self.peek() and self.peek() in SPACES:
            self.next()
            spaces += 1
        # " -}}" is a trim-marked right delimiter, not a space and a minus
        if _right_trim(self.input, self.pos - 1) and self.input.startswith("}}", self.pos + 1):
            self.backup()
            if spaces == 1:
                return self.lex_right_delim
        self.emit(SPACE)
        return self.lex_inside_action

    def lex_identifier(self):
        while True:
            ch = self.next()
            if ch and _is_alnum(ch):
                continue
            self.backup()
            word = self.input[self.start:self.pos]
            if not self.at_terminator():
                return self.errorf(f"bad character {_unicode_name(ch)}")
            if word in KEYWORDS and KEYWORDS[word] > KEYWORD:
                self.emit(KEYWORDS[word])
            elif word[0] == ".":
                self.emit(FIELD)
            elif word in ("true", "false"):
                self.emit(BOOL)
            else:
                self.emit(IDENT)
            return self.lex_inside_action

    def lex_field(self):
        return self.lex_field_or_variable(FIELD)

    def lex_variable(self):
        if self.at_terminator():
            self.emit(VARIABLE)
            return self.lex_inside_action
        return self.lex_field_or_variable(VARIABLE)

    def lex_field_or_variable(self, typ: int):
        if self.at_terminator():
            self.emit(VARIABLE if typ == VARIABLE else DOT)
            return self.lex_inside_action
        while True:
            ch = self.next()
            if not (ch and _is_alnum(ch)):
                self.backup()
                break
        if not self.at_terminator():
            return self.errorf(f"bad character {_unicode_name(self.peek())}")
        self.emit(typ)
        return self.lex_inside_action

    def at_terminator(self) -> bool:
        ch = self.peek()
        return ch == "" or ch in SPACES or ch in ".,|:()" or self.input.startswith("}}", self.pos)

    def lex_char(self):
        while True:
            ch = self.next()
            if ch == "\\":
                ch = self.next()
                if ch and ch != "\n":
                    continue
                return self.errorf("unterminated character constant")
            if ch == "" or ch == "\n":
                return self.errorf("unterminated character constant")
            if ch == "'":
                break
        self.emit(CHARCONST)
        return self.lex_inside_action

    def lex_number(self):
        if not self.scan_number():
            return self.errorf(f"bad number syntax: {gofmt.go_quote(self.input[self.start:self.pos])}")
        if self.peek() in ("+", "-") and self.peek():
            if not self.scan_number() or self.input[self.pos - 1] != "i":
                return self.errorf(f"bad number syntax: {gofmt.go_quote(self.input[self.start:self.pos])}")
            self.emit(COMPLEX)
        else:
            self.emit(NUMBER)
        return self.lex_inside_action

    def scan_number(self) -> bool:
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        self.accept("i")
        if self.peek() and _is_alnum(self.peek()):
            self.next()
            return False
        return True

    def lex_quote(self):
        while True:
            ch = self.next()
            if ch == "\\":
                ch = self.next()
                if ch and ch != "\n":
                    continue
                return self.errorf("unterminated quoted string")
            if ch == "" or ch == "\n":
                return self.errorf("unterminated quoted string")
            if ch == '"':
                break
        self.emit(STRING)
        return self.lex_inside_action

    def lex_raw_quote(self):
        i = self.input.find("`", self.pos)
        if i < 0:
            return self.errorf("unterminated raw quoted string")
        self.pos = i + 1
        self.emit(RAWSTRING)
        return self.lex_inside_action


def _left_trim(s: str, i: int) -> bool:
    return len(s) >= i + 2 and s[i] == "-" and s[i + 1] in SPACES


def _right_trim(s: str, i: int) -> bool:
    return i >= 0 and len(s) >= i + 2 and s[i] in SPACES and s[i + 1] == "-"


def _left_trim_length(s: str, i: int) -> int:
    j = i
    while j < len(s) and s[j] in SPACES:
        j += 1
    return j - i


# -- Go literals ---------------------------------------------------------------------------------------

_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
                   "'": "'", '"': '"'}


def unquote(text: str) -> str:
    """``strconv.Unquote`` of a Go string, raw string or rune literal; ``ValueError("invalid syntax")``."""
    if len(text) < 2 or text[0] != text[-1] or text[0] not in "\"'`":
        raise ValueError("invalid syntax")
    q, body = text[0], text[1:-1]
    if q == "`":
        if "`" in body:
            raise ValueError("invalid syntax")
        return body.replace("\r", "")
    if "\\" not in body:
        if q in body or "\n" in body:
            raise ValueError("invalid syntax")
        if q == "'" and len(body) != 1:
            raise ValueError("invalid syntax")
        return body
    out: list[str] = []
    raw = bytearray()  # \x and octal escapes are bytes

    def flush():
        if raw:
            out.append(raw.decode("utf-8", "surrogateescape"))
            raw.clear()

    i = 0
    while i < len(body):
        ch = body[i]
        if ch == q or ch == "\n":
            raise ValueError("invalid syntax")
        if ch != "\\":
            flush()
            out.append(ch)
            i += 1
            continue
        i += 1
        if i >= len(body):
            raise ValueError("invalid syntax")
        e = body[i]
        if e in _SIMPLE_ESCAPES:
            if (e == "'" and q == '"') or (e == '"' and q == "'"):
                raise ValueError("invalid syntax")
            flush()
            out.append(_SIMPLE_ESCAPES[e])
            i += 1
        elif e in "xuU":
            n = {"x": 2, "u": 4, "U": 8}[e]
            digits = body[i + 1:i + 1 + n]
            if len(digits) != n or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError("invalid syntax")
            v = int(digits, 16)
            if e == "x":
                if q == "'":
                    flush()
                    out.append(chr(v))
                else:
                    raw.append(v)
            else:
                if v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
                    raise ValueError("invalid syntax")
                flush()
                out.append(chr(v))
            i += 1 + n
        elif e in "01234567":
            digits = body[i:i + 3]
            if len(digits) != 3 or any(c not in "01234567" for c in digits) or int(digits, 8) > 255:
                raise ValueError("invalid syntax")
            if q == "'":
                flush()
                out.append(chr(int(digits, 8)))
            else:
                raw.append(int(digits, 8))
            i += 3
        else:
            raise ValueError("invalid syntax")
    flush()
    value = "".join(out)
    if q == "'" and len(value) != 1:
        raise ValueError("invalid syntax")
    return value


def _char_constant(text: str) -> int:
    """The rune of a character literal: strconv.UnquoteChar's ``invalid syntax``, or Go's
    ``malformed character constant`` when more than one character is quoted."""
    body = text[1:]
    if not body or body[0] == "'":
        raise TemplateError("invalid syntax")
    if body[0] != "\\":
        first, tail = body[0], body[1:]
    else:
        e = body[1:2]
        n = {"x": 3, "u": 5, "U": 9}.get(e, 3 if e in "01234567" and e else 1)
        first, tail = body[: 1 + n], body[1 + n:]
        if e == '"':
            raise TemplateError("invalid syntax")
        try:
            first = unquote("'" + first + "'")
        except ValueError:
            raise TemplateError("invalid syntax") from None
    if tail != "'":
        raise TemplateError(f"malformed character constant: {text}")
    return ord(first)


def _parse_int(text: str) -> int:
    """``strconv.ParseInt(text, 0, 64)``'s syntax (a leading 0 is octal); ``ValueError`` otherwise."""
    t = text
    sign = 1
    if t[:1] in "+-":
        sign = -1 if t[0] == "-" else 1
        t = t[1:]
    if not t or t[0] == "_" or t[-1] == "_" or "__" in t:
        raise ValueError(text)
    low = t.lower()
    if low.startswith(("0x", "0o", "0b")):
        body = t[2:].lstrip("_")
        base = {"x": 16, "o": 8, "b": 2}[low[1]]
    elif len(t) > 1 and t[0] == "0":
        body, base = t[1:].lstrip("_"), 8
    else:
        body, base = t, 10
    if not body:
        raise ValueError(text)
    return sign * int(body.replace("_", ""), base)


class Number:
    """A parsed number literal: which Go kinds it fits (``is_int``, ``is_uint``, ``is_float``, ``is_complex``)."""

    __slots__ = ("text", "is_int", "is_uint", "is_float", "is_complex", "int", "uint", "float", "complex")

    def __init__(self, text: str, typ: int):
        self.text = text
        self.is_int = self.is_uint = self.is_float = self.is_complex = False
        self.int = self.uint = 0
        self.float = 0.0
        self.complex = 0j
        if typ == CHARCONST:
            r = _char_constant(text)
            self.is_int = self.is_uint = self.is_float = True
            self.int = self.uint = r
            self.float = float(r)
            return
        if typ == COMPLEX:
            try:
                self.complex = complex(text.replace("_", "").replace("i", "j"))
            except ValueError:
                raise TemplateError(f"illegal number syntax: {gofmt.go_quote(text)}") from None
            self.is_complex = True
            self._simplify_complex()
            return
        if text.endswith("i"):
            try:
                self.complex = complex(0, float(text[:-1].replace("_", "")))
            except ValueError:
                raise TemplateError(f"illegal number syntax: {gofmt.go_quote(text)}") from None
            self.is_complex = True
            self._simplify_complex()
            return
        try:
            u = _parse_int(text) if text[:1] not in "+-" else None
            if u is not None and 0 <= u < 1 << 64:
                self.is_uint, self.uint = True, u
        except ValueError:
            pass
        try:
            i = _parse_int(text)
            if -(1 << 63) <= i < 1 << 63:
                self.is_int, self.int = True, i
        except ValueError:
            pass
        if self.is_int:
            self.is_float, self.float = True, float(self.int)
        elif self.is_uint:
            self.is_float, self.float = True, float(self.uint)
        else:
            f = None
            try:
                if "0x" in text.lower():
                    f = float.fromhex(text.replace("_", ""))
                elif not (text.lstrip("+-").startswith("_") or "__" in text or text.endswith("_")):
                    f = float(text.replace("_", ""))
            except (ValueError, OverflowError):
                f = None
            if f is not None and f in (float("inf"), float("-inf")):
                f = None  # strconv.ParseFloat: value out of range
            if f is not None:
                if not any(c in text for c in ".eEpP"):
                    raise TemplateError(f"integer overflow: {gofmt.go_quote(text)}")
                self.is_float, self.float = True, f
                self._ints_of_float()
        if not (self.is_int or self.is_uint or self.is_float):
            raise TemplateError(f"illegal number syntax: {gofmt.go_quote(text)}")

    def _ints_of_float(self) -> None:
        f = self.float
        if f == f and abs(f) != float("inf") and float(int(f)) == f:
            if not self.is_int and -(1 << 63) <= int(f) < 1 << 63:
                self.is_int, self.int = True, int(f)
            if not self.is_uint and 0 <= int(f) < 1 << 64:
                self.is_uint, self.uint = True, int(f)

    def _simplify_complex(self) -> None:
        if self.complex.imag == 0:
            self.is_float, self.float = True, self.complex.real
            self._ints_of_float()
