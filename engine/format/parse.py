"""The parse half of Go's ``text/template``: a lexer and a parser that build a tree of nodes.

``parse(text, funcs)`` returns ``(root, trees)``: the template's ``ListNode`` and the templates
it defines (``{{define}}``, ``{{block}}``), or raises ``TemplateParseError`` with Go's message
(``template: :1: unexpected EOF``). Function names are checked here, as Go checks them; variables
must be declared before use. The nodes' ``str()`` is Go's, because execution errors quote them
(``executing "" at <index .Ports 0>``). Positions are character offsets in the text.
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


# -- the tree ------------------------------------------------------------------------------------------


class Node:
    __slots__ = ("pos",)
    kind = ""

    def __str__(self) -> str:  # pragma: no cover - each node has its own
        return self.kind


class ListNode(Node):
    __slots__ = ("nodes",)
    kind = "list"

    def __init__(self, pos: int):
        self.pos, self.nodes = pos, []

    def __str__(self) -> str:
        return "".join(str(n) for n in self.nodes)


class TextNode(Node):
    __slots__ = ("text",)
    kind = "text"

    def __init__(self, pos: int, text: str):
        self.pos, self.text = pos, text

    def __str__(self) -> str:
        return self.text


class CommentNode(Node):
    __slots__ = ("text",)
    kind = "comment"

    def __init__(self, pos: int, text: str):
        self.pos, self.text = pos, text

    def __str__(self) -> str:
        return "{{" + self.text + "}}"


class PipeNode(Node):
    __slots__ = ("line", "is_assign", "decl", "cmds")
    kind = "pipe"

    def __init__(self, pos: int, line: int, decl: list | None = None):
        self.pos, self.line, self.is_assign, self.decl, self.cmds = pos, line, False, decl or [], []

    def __str__(self) -> str:
        text = ""
        if self.decl:
            text = ", ".join(str(v) for v in self.decl) + " := "
        return text + " | ".join(str(c) for c in self.cmds)


class ActionNode(Node):
    __slots__ = ("line", "pipe")
    kind = "action"

    def __init__(self, pos: int, line: int, pipe: PipeNode):
        self.pos, self.line, self.pipe = pos, line, pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


class CommandNode(Node):
    __slots__ = ("args",)
    kind = "command"

    def __init__(self, pos: int):
        self.pos, self.args = pos, []

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, PipeNode) else str(a) for a in self.args)


class IdentifierNode(Node):
    __slots__ = ("ident",)
    kind = "identifier"

    def __init__(self, pos: int, ident: str):
        self.pos, self.ident = pos, ident

    def __str__(self) -> str:
        return self.ident


class VariableNode(Node):
    __slots__ = ("ident",)
    kind = "variable"

    def __init__(self, pos: int, name: str):
        self.pos, self.ident = pos, name.split(".")

    def __str__(self) -> str:
        return ".".join(self.ident)


class DotNode(Node):
    __slots__ = ()
    kind = "dot"

    def __init__(self, pos: int):
        self.pos = pos

    def __str__(self) -> str:
        return "."


class NilNode(Node):
    __slots__ = ()
    kind = "nil"

    def __init__(self, pos: int):
        self.pos = pos

    def __str__(self) -> str:
        return "nil"


class FieldNode(Node):
    __slots__ = ("ident",)
    kind = "field"

    def __init__(self, pos: int, name: str):
        self.pos, self.ident = pos, name[1:].split(".")

    def __str__(self) -> str:
        return "." + ".".join(self.ident)


class ChainNode(Node):
    __slots__ = ("node", "field")
    kind = "chain"

    def __init__(self, pos: int, node: Node):
        self.pos, self.node, self.field = pos, node, []

    def __str__(self) -> str:
        base = f"({self.node})" if isinstance(self.node, PipeNode) else str(self.node)
        return base + "".join("." + f for f in self.field)


class BoolNode(Node):
    __slots__ = ("true",)
    kind = "bool"

    def __init__(self, pos: int, true: bool):
        self.pos, self.true = pos, true

    def __str__(self) -> str:
        return "true" if self.true else "false"


class NumberNode(Node):
    __slots__ = ("number",)
    kind = "number"

    def __init__(self, pos: int, number: Number):
        self.pos, self.number = pos, number

    def __str__(self) -> str:
        return self.number.text


class StringNode(Node):
    __slots__ = ("quoted", "text")
    kind = "string"

    def __init__(self, pos: int, quoted: str, text: str):
        self.pos, self.quoted, self.text = pos, quoted, text

    def __str__(self) -> str:
        return self.quoted


class EndNode(Node):
    __slots__ = ()
    kind = "end"

    def __init__(self, pos: int):
        self.pos = pos

    def __str__(self) -> str:
        return "{{end}}"


class ElseNode(Node):
    __slots__ = ("line",)
    kind = "else"

    def __init__(self, pos: int, line: int):
        self.pos, self.line = pos, line

    def __str__(self) -> str:
        return "{{else}}"


class BranchNode(Node):
    __slots__ = ("line", "pipe", "list", "else_list")
    kind = "if"

    def __init__(self, pos: int, line: int, pipe: PipeNode, list_: ListNode, else_list: ListNode | None):
        self.pos, self.line, self.pipe, self.list, self.else_list = pos, line, pipe, list_, else_list

    def __str__(self) -> str:
        text = "{{" + self.kind + " " + str(self.pipe) + "}}" + str(self.list)
        if self.else_list is not None:
            text += "{{else}}" + str(self.else_list)
        return text + "{{end}}"


class IfNode(BranchNode):
    __slots__ = ()
    kind = "if"


class RangeNode(BranchNode):
    __slots__ = ()
    kind = "range"


class WithNode(BranchNode):
    __slots__ = ()
    kind = "with"


class BreakNode(Node):
    __slots__ = ("line",)
    kind = "break"

    def __init__(self, pos: int, line: int):
        self.pos, self.line = pos, line

    def __str__(self) -> str:
        return "{{break}}"


class ContinueNode(Node):
    __slots__ = ("line",)
    kind = "continue"

    def __init__(self, pos: int, line: int):
        self.pos, self.line = pos, line

    def __str__(self) -> str:
        return "{{continue}}"


class TemplateNode(Node):
    __slots__ = ("line", "name", "pipe")
    kind = "template"

    def __init__(self, pos: int, line: int, name: str, pipe: PipeNode | None):
        self.pos, self.line, self.name, self.pipe = pos, line, name, pipe

    def __str__(self) -> str:
        return "{{template " + gofmt.go_quote(self.name) + (" " + str(self.pipe) if self.pipe else "") + "}}"


_EXECUTABLE_FIRST = (IdentifierNode, FieldNode, ChainNode, VariableNode, PipeNode)


# -- parsing -------------------------------------------------------------------------------------------


class _ParseError(Exception):
    pass


class Parser:
    """Go's template parser (``text/template/parse/parse.go``) over a ``Lexer``'s items."""

    def __init__(self, text: str, items: list[Item], funcs, trees: dict, name: str = ""):
        self.text = text
        self.items = items
        self.i = 0
        self.seen = 0  # furthest item read: its line is the line of a parse error, as Go's token[0]
        self.funcs = funcs
        self.trees = trees
        self.name = name
        self.vars = ["$"]
        self.action_line = 0
        self.range_depth = 0
        self.depth = 0

    # tokens
    def next(self) -> Item:
        item = self.items[min(self.i, len(self.items) - 1)]
        self.i += 1
        self.seen = max(self.seen, self.i - 1)
        return item

    def backup(self, n: int = 1) -> None:
        self.i -= n

    def peek(self) -> Item:
        item = self.next()
        self.backup()
        return item

    def next_non_space(self) -> Item:
        while True:
            item = self.next()
            if item.typ != SPACE:
                return item

    def peek_non_space(self) -> Item:
        item = self.next_non_space()
        self.backup()
        return item

    def errorf(self, message: str):
        line = self.items[min(self.seen, len(self.items) - 1)].line
        raise _ParseError(f"template: {self.name}:{line}: {message}")

    def expect(self, typ: int, context: str) -> Item:
        item = self.next_non_space()
        if item.typ != typ:
            self.unexpected(item, context)
        return item

    def unexpected(self, item: Item, context: str):
        if item.typ == ERROR:
            extra = ""
            if self.action_line and self.action_line != item.line:
                extra = f" in action started at {self.name}:{self.action_line}"
                if item.val.endswith(" action"):
                    extra = extra[len(" in action"):]
            self.errorf(f"{item}{extra}")
        self.errorf(f"unexpected {item} in {context}")

    # structure
    def parse(self) -> ListNode:
        root = ListNode(self.peek().pos)
        while self.peek().typ != EOF:
            if self.peek().typ == LDELIM:
                start = self.i
                self.next()
                if self.next_non_space().typ == DEFINE:
                    self.parse_definition()
                    continue
                self.i = start
            node = self.text_or_action()
            if isinstance(node, (EndNode, ElseNode)):
                self.errorf(f"unexpected {node}")
            root.nodes.append(node)
        return root

    def parse_definition(self) -> None:
        context = "define clause"
        item = self.next_non_space()
        if item.typ not in (STRING, RAWSTRING):
            self.unexpected(item, context)
        try:
            name = unquote(item.val)
        except ValueError as exc:
            self.errorf(str(exc))
        self.expect(RDELIM, context)
        saved_vars = self.vars
        self.vars = ["$"]
        body, end = self.item_list()
        self.vars = saved_vars
        if not isinstance(end, EndNode):
            self.errorf(f"unexpected {end} in {context}")
        self.add(name, body)

    def add(self, name: str, body: ListNode) -> None:
        existing = self.trees.get(name)
        if existing is None or _is_empty(existing):
            self.trees[name] = body
        elif not _is_empty(body):
            self.errorf(f"template: multiple definition of template {gofmt.go_quote(name)}")

    def item_list(self):
        lst = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().typ != EOF:
            node = self.text_or_action()
            if isinstance(node, (EndNode, ElseNode)):
                return lst, node
            lst.nodes.append(node)
        self.errorf("unexpected EOF")

    def text_or_action(self) -> Node:
        item = self.next_non_space()
        if item.typ == TEXT:
            return TextNode(item.pos, item.val)
        if item.typ == LDELIM:
            self.action_line = item.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        self.unexpected(item, "input")

    def action(self) -> Node:
        item = self.next_non_space()
        t = item.typ
        if t == BLOCK:
            return self.block_control()
        if t == BREAK:
            return self.break_control(item, "break")
        if t == CONTINUE:
            return self.break_control(item, "continue")
        if t == ELSE:
            return self.else_control()
        if t == END:
            return EndNode(self.expect(RDELIM, "end").pos)
        if t == IF:
            return IfNode(*self.parse_control("if"))
        if t == RANGE:
            return RangeNode(*self.parse_control("range"))
        if t == TEMPLATE:
            return self.template_control()
        if t == WITH:
            return WithNode(*self.parse_control("with"))
        self.backup()
        item = self.peek()
        return ActionNode(item.pos, item.line, self.pipeline("command", RDELIM))

    def break_control(self, item: Item, word: str) -> Node:
        following = self.next_non_space()
        if following.typ != RDELIM:
            self.unexpected(following, "{{" + word + "}}")
        if self.range_depth == 0:
            self.errorf("{{" + word + "}} outside {{range}}")
        return (BreakNode if word == "break" else ContinueNode)(item.pos, item.line)

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        if peek.typ in (IF, WITH):
            return ElseNode(peek.pos, peek.line)
        item = self.expect(RDELIM, "else")
        return ElseNode(item.pos, item.line)

    def parse_control(self, context: str):
        mark = len(self.vars)
        try:
            pipe = self.pipeline(context, RDELIM)
            if context == "range":
                self.range_depth += 1
            lst, nxt = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_list = None
            if isinstance(nxt, ElseNode):
                if context == "if" and self.peek().typ == IF:
                    self.next()
                    else_list = ListNode(nxt.pos)
                    else_list.nodes.append(IfNode(*self.parse_control("if")))
                elif context == "with" and self.peek().typ == WITH:
                    self.next()
                    else_list = ListNode(nxt.pos)
                    else_list.nodes.append(WithNode(*self.parse_control("with")))
                else:
                    else_list, nxt = self.item_list()
                    if not isinstance(nxt, EndNode):
                        self.errorf(f"expected end; found {nxt}")
            return pipe.pos, pipe.line, pipe, lst, else_list
        finally:
            del self.vars[mark:]

    def block_control(self) -> Node:
        context = "block clause"
        item = self.next_non_space()
        name = self.template_name(item, context)
        pipe = self.pipeline(context, RDELIM)
        saved_vars = self.vars
        self.vars = ["$"]
        body, end = self.item_list()
        self.vars = saved_vars
        if not isinstance(end, EndNode):
            self.errorf(f"unexpected {end} in {context}")
        self.add(name, body)
        return TemplateNode(item.pos, item.line, name, pipe)

    def template_control(self) -> Node:
        context = "template clause"
        item = self.next_non_space()
        name = self.template_name(item, context)
        pipe = None
        if self.next_non_space().typ != RDELIM:
            self.backup()
            pipe = self.pipeline(context, RDELIM)
        return TemplateNode(item.pos, item.line, name, pipe)

    def template_name(self, item: Item, context: str) -> str:
        if item.typ in (STRING, RAWSTRING):
            try:
                return unquote(item.val)
            except ValueError as exc:
                self.errorf(str(exc))
        self.unexpected(item, context)

    def pipeline(self, context: str, end: int) -> PipeNode:
        item = self.peek_non_space()
        pipe = PipeNode(item.pos, item.line)
        while True:  # declarations: "$x :=", "$x =", "$i, $v :="
            v = self.peek_non_space()
            if v.typ != VARIABLE:
                break
            start = self.i
            self.next()
            nxt = self.peek_non_space()
            if nxt.typ in (ASSIGN, DECLARE):
                pipe.is_assign = nxt.typ == ASSIGN
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, v.val))
                self.vars.append(v.val)
            elif nxt.typ == CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, v.val))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in (VARIABLE, RDELIM, RPAREN):
                        continue  # the second variable of a range
                    self.errorf("range can only initialize variables")
                self.errorf(f"too many declarations in {context}")
            else:
                self.i = start  # "$x foo": the variable is an argument, not a declaration
            break
        while True:
            item = self.next_non_space()
            if item.typ == end:
                self.check_pipeline(pipe, context)
                return pipe
            if item.typ in (BOOL, CHARCONST, COMPLEX, DOT, FIELD, IDENT, NUMBER, NIL, RAWSTRING, STRING,
                            VARIABLE, LPAREN):
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(item, context)

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            self.errorf(f"missing value for {context}")
        for i, cmd in enumerate(pipe.cmds[1:]):
            if isinstance(cmd.args[0], (BoolNode, DotNode, NilNode, NumberNode, StringNode)):
                self.errorf(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            item = self.next()
            if item.typ == SPACE:
                continue
            if item.typ in (RDELIM, RPAREN):
                self.backup()
            elif item.typ == PIPE:
                pass
            else:
                self.unexpected(item, "operand")
            break
        if not cmd.args:
            self.errorf("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == FIELD:
            chain = ChainNode(self.peek().pos, node)
            while self.peek().typ == FIELD:
                chain.field.append(self.next().val[1:])
            if isinstance(node, FieldNode):
                node = FieldNode(chain.pos, str(node) + "".join("." + f for f in chain.field))
            elif isinstance(node, VariableNode):
                node = VariableNode(chain.pos, str(node) + "".join("." + f for f in chain.field))
            elif isinstance(node, (BoolNode, StringNode, NumberNode, NilNode, DotNode)):
                self.errorf(f"unexpected . after term {gofmt.go_quote(str(node))}")
            else:
                node = chain
        return node

    def term(self) -> Node | None:
        item = self.next_non_space()
        t = item.typ
        if t == IDENT:
            if item.val not in self.funcs:
                self.errorf(f"function {gofmt.go_quote(item.val)} not defined")
            return IdentifierNode(item.pos, item.val)
        if t == DOT:
            return DotNode(item.pos)
        if t == NIL:
            return NilNode(item.pos)
        if t == VARIABLE:
            name = item.val.split(".")[0]
            if name not in self.vars:
                self.errorf(f"undefined variable {gofmt.go_quote(name)}")
            return VariableNode(item.pos, item.val)
        if t == FIELD:
            return FieldNode(item.pos, item.val)
        if t == BOOL:
            return BoolNode(item.pos, item.val == "true")
        if t in (CHARCONST, COMPLEX, NUMBER):
            try:
                return NumberNode(item.pos, Number(item.val, t))
            except TemplateError as exc:
                self.errorf(str(exc))
        if t == LPAREN:
            if self.depth >= 10000:
                self.errorf("max expression depth exceeded")
            self.depth += 1
            try:
                return self.pipeline("parenthesized pipeline", RPAREN)
            finally:
                self.depth -= 1
        if t in (STRING, RAWSTRING):
            try:
                return StringNode(item.pos, item.val, unquote(item.val))
            except ValueError as exc:
                self.errorf(str(exc))
        self.backup()
        return None


def _is_empty(node) -> bool:
    if node is None or isinstance(node, CommentNode):
        return True
    if isinstance(node, ListNode):
        return all(_is_empty(n) for n in node.nodes)
    if isinstance(node, TextNode):
        return not node.text.strip(" \t\r\n\v\f")
    return False


def parse(text: str, funcs, name: str = ""):
    """The tree of ``text`` and the templates it defines; ``TemplateParseError`` if it is not Go's syntax."""
    trees: dict[str, ListNode] = {}
    parser = Parser(text, Lexer(text).items, funcs, trees, name)
    try:
        root = parser.parse()
    except _ParseError as exc:
        raise TemplateParseError(str(exc)) from None
    except RecursionError:
        raise TemplateParseError(f"template: {name}: expression nested too deeply") from None
    existing = trees.get(name)
    if existing is not None and not _is_empty(existing) and not _is_empty(root):
        raise TemplateParseError(f"template: {name}:1: template: multiple definition of template "
                                 f"{gofmt.go_quote(name)}")
    if existing is None or not _is_empty(root):
        trees[name] = root
    return trees[name], trees
