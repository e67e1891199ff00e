"""Go's template parser (``text/template/parse/parse.go``): tokens to a tree of ``engine.format.nodes``.

``parse(text, funcs)`` returns ``(root, trees)``: the template's ``ListNode`` and the templates
it defines (``{{define}}``, ``{{block}}``), or raises ``TemplateParseError`` with Go's message
(``template: :1: unexpected EOF``). Function names are checked here, as Go checks them; variables
must be declared before use.
"""

from __future__ import annotations

from engine.format import gofmt
from engine.format.lex import (BOOL, CHAR, CHARCONST, COMPLEX, ASSIGN, DECLARE, EOF, ERROR, FIELD, IDENT, LDELIM,
                               LPAREN, NUMBER, PIPE, RAWSTRING, RDELIM, RPAREN, SPACE, STRING, TEXT, VARIABLE,
                               BLOCK, BREAK, CONTINUE, DEFINE, DOT, ELSE, END, IF, NIL, RANGE, TEMPLATE, WITH,
                               Item, Lexer, Number, TemplateError, TemplateParseError, unquote)
from engine.format.nodes import (ActionNode, BoolNode, BreakNode, ChainNode, CommandNode, CommentNode,
                                 ContinueNode, DotNode, ElseNode, EndNode, FieldNode, IdentifierNode, IfNode,
                                 ListNode, NilNode, Node, NumberNode, PipeNode, RangeNode, StringNode, TemplateNode,
                                 TextNode, VariableNode, WithNode)

__all__ = ["parse", "TemplateError", "TemplateParseError"]


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
