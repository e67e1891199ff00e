"""The nodes of a parsed template; ``str()`` of a node is Go's, because execution errors quote it
(``executing "" at <index .Ports 0>``). Positions are character offsets in the template's text."""

from __future__ import annotations

from engine.format import gofmt
from engine.format.lex import Number


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
