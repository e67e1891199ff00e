"""Go's ``text/template``, as Docker's ``--format`` runs it: parse once, execute on each object.

Lifecycle: ``Template(text, funcs)`` parses (``engine.format.lex``, ``parse``; a bad template raises
``TemplateParseError`` with Go's message, ``template: :1: unclosed action``); ``execute(data)``
walks the tree over plain Python data (see ``engine.format.gofmt`` for how values map to Go's)
and returns the text, or raises ``TemplateError`` with Go's execution message (``template:
:1:2: executing "" at <.Nope>: can't evaluate field Nope in type …``)::

    t = Template("{{range $i, $p := .Ports}}{{if $i}}, {{end}}{{$p.Port}}{{end}}")
    t.execute({"Ports": [{"Port": 80}, {"Port": 443}]})      -> "80, 443"

The language is all of Go's: actions, pipelines, variables (``$x := …``, ``$x = …``, ``$``),
``if``/``else if``/``else with``/``else``, ``range`` (lists, maps in key order, integers; ``else``,
``break``, ``continue``), ``with``, ``define``/``template``/``block``, comments, ``{{-`` and
``-}}``, string, raw string, rune, number, bool and nil literals, the builtins and Docker's
functions of ``engine.format.funcs``.

Behaviour follows Go 1.24, as the Docker CLI 28 is built with: a missing map key prints
``<no value>`` (or is an error with ``missingkey="error"``), a missing struct field is an error,
comparisons of different kinds are errors, ``and``/``or`` stop at the first deciding argument.
Execution errors give Go's line and byte column.
"""

from __future__ import annotations

from engine.format import gofmt
from engine.format.funcs import DOCKER_FUNCS, HEADER_FUNCS, CallError, Function, call_function
from engine.format.gofmt import GoMap, Method, NilPointer, StringList, Struct, go_type, is_true
from engine.format.lex import TemplateError, TemplateParseError
from engine.format.nodes import (ActionNode, BoolNode, BreakNode, ChainNode, CommentNode, CommandNode, ContinueNode,
                                 DotNode, FieldNode, IdentifierNode, IfNode, ListNode, NilNode, Node, NumberNode,
                                 PipeNode, RangeNode, StringNode, TemplateNode, TextNode, VariableNode, WithNode)
from engine.format.parse import parse

__all__ = ["Template", "TemplateError", "TemplateParseError", "DOCKER_FUNCS", "HEADER_FUNCS"]


# -- executing -----------------------------------------------------------------------------------------

MISSING = object()  # "no value from the previous command" (Go's missingVal)


class _Iface:
    """An element of a plain list or map while ``range`` walks it: Go holds it as an ``interface {}``,
    which its messages name (``can't evaluate field x in type interface {}``). Unwrapped on use."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def _plain(v):
    return v.value if isinstance(v, _Iface) else v


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class State:
    """One execution of a template: the variable stack, the current node (for messages), the output."""

    def __init__(self, template: "Template", funcs: dict, missingkey: str):
        self.tmpl = template
        self.funcs = funcs
        self.missingkey = missingkey
        self.vars: list[list] = []
        self.node: Node | None = None
        self.out: list[str] = []
        self.depth = 0

    # errors
    def at(self, node: Node) -> None:
        self.node = node

    def errorf(self, message: str):
        if self.node is None:
            raise TemplateError(f"template: {self.tmpl.name}: {message}")
        text = self.tmpl.text[: self.node.pos]
        nl = text.rfind("\n")
        prefix = text[nl + 1:]
        col = len(prefix) if prefix.isascii() else len(prefix.encode("utf-8", "surrogateescape"))
        line = 1 + text.count("\n")
        raise TemplateError(f"template: {self.tmpl.name}:{line}:{col}: executing {gofmt.go_quote(self.tmpl.name)} "
                            f"at <{self.node}>: {message}")

    # variables
    def push(self, name: str, value) -> None:
        self.vars.append([name, value])

    def mark(self) -> int:
        return len(self.vars)

    def pop(self, mark: int) -> None:
        del self.vars[mark:]

    def set_var(self, name: str, value) -> None:
        for v in reversed(self.vars):
            if v[0] == name:
                v[1] = value
                return
        self.errorf(f"undefined variable: {name}")

    def set_top_var(self, n: int, value) -> None:
        self.vars[-n][1] = value

    def var_value(self, name: str):
        for v in reversed(self.vars):
            if v[0] == name:
                return v[1]
        self.errorf(f"undefined variable: {name}")

    # walking
    def walk(self, dot, node: Node) -> None:
        self.at(node)
        if isinstance(node, ActionNode):
            val = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.print_value(node, val)
        elif isinstance(node, TextNode):
            self.out.append(node.text)
        elif isinstance(node, ListNode):
            for n in node.nodes:
                self.walk(dot, n)
        elif isinstance(node, (IfNode, WithNode)):
            mark = self.mark()
            try:
                val = self.eval_pipeline(dot, node.pipe)
                if is_true(val):
                    self.walk(val if isinstance(node, WithNode) else dot, node.list)
                elif node.else_list is not None:
                    self.walk(dot, node.else_list)
            finally:
                self.pop(mark)
        elif isinstance(node, RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break()
        elif isinstance(node, ContinueNode):
            raise _Continue()
        elif isinstance(node, CommentNode):
            pass
        else:  # pragma: no cover
            self.errorf(f"unknown node: {node}")

    def walk_range(self, dot, r: RangeNode) -> None:
        self.at(r)
        outer = self.mark()
        try:
            val = self.eval_pipeline(dot, r.pipe)
            mark = self.mark()
            decl = r.pipe.decl

            def one(index, elem):
                if decl:
                    if r.pipe.is_assign:
                        self.set_var(decl[0].ident[0], index if len(decl) > 1 else elem)
                    else:
                        self.set_top_var(1, elem)
                if len(decl) > 1:
                    if r.pipe.is_assign:
                        self.set_var(decl[1].ident[0], elem)
                    else:
                        self.set_top_var(2, index)
                try:
                    self.walk(elem, r.list)
                except _Continue:
                    pass
                finally:
                    self.pop(mark)

            ran = False
            if isinstance(val, (list, tuple)):
                wrap = _Iface if not isinstance(val, StringList) else (lambda x: x)
                for i, elem in enumerate(val):
                    ran = True
                    one(i, wrap(elem))
            elif isinstance(val, dict):
                wrap = _Iface if not isinstance(val, GoMap) else (lambda x: x)
                for k in gofmt.sorted_keys(val):
                    ran = True
                    one(k, wrap(val[k]))
            elif isinstance(val, int) and not isinstance(val, bool):
                if len(decl) > 1:
                    self.errorf(f"can't use {gofmt.value_text(val)} to iterate over more than one variable")
                for i in range(val):
                    ran = True
                    one(None, i)
            elif val is None or isinstance(val, NilPointer):
                pass
            else:
                self.errorf(f"range can't iterate over {gofmt.value_text(val)}")
            if not ran and r.else_list is not None:
                self.walk(dot, r.else_list)
        except _Break:
            pass
        finally:
            self.pop(outer)

    def walk_template(self, dot, t: TemplateNode) -> None:
        self.at(t)
        body = self.tmpl.trees.get(t.name)
        if body is None:
            self.errorf(f"template {gofmt.go_quote(t.name)} not defined")
        if self.depth >= 1000:
            self.errorf("exceeded maximum template depth (1000)")
        dot = self.eval_pipeline(dot, t.pipe)
        saved = self.vars
        self.vars = [["$", dot]]
        self.depth += 1
        try:
            self.walk(dot, body)
        finally:
            self.depth -= 1
            self.vars = saved

    # evaluating
    def eval_pipeline(self, dot, pipe: PipeNode | None):
        if pipe is None:
            return None
        self.at(pipe)
        value = MISSING
        for cmd in pipe.cmds:
            value = _plain(self.eval_command(dot, cmd, value))
        for v in pipe.decl:
            if pipe.is_assign:
                self.set_var(v.ident[0], value)
            else:
                self.push(v.ident[0], value)
        return value

    def not_a_function(self, args: list, final) -> None:
        if (args is not None and len(args) > 1) or final is not MISSING:
            self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot, cmd: CommandNode, final):
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            self.at(first)
            return self.eval_field_chain(dot, dot, first, first.ident, cmd.args, final)
        if isinstance(first, ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, BoolNode):
            return first.true
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            self.errorf("nil is not a command")
        if isinstance(first, NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, StringNode):
            return first.text
        self.errorf(f"can't evaluate command {gofmt.go_quote(str(first))}")

    def ideal_constant(self, node: NumberNode):
        self.at(node)
        n = node.number
        if n.is_complex:
            return n.complex
        text = n.text
        if n.is_float and not (len(text) > 2 and text[0] == "0" and text[1] in "xX" and not any(c in text for c in "pP")) \
                and text[0] != "'" and any(c in text for c in ".eEpP"):
            return n.float
        if n.is_int:
            return n.int
        if n.is_uint:
            self.errorf(f"{text} overflows int")
        return None

    def eval_chain(self, dot, chain: ChainNode, args: list, final):
        self.at(chain)
        if isinstance(chain.node, NilNode):
            self.errorf(f"indirection through explicit nil in {chain}")
        pipe = self.eval_arg(dot, None, chain.node)
        return self.eval_field_chain(dot, pipe, chain, chain.field, args, final)

    def eval_variable(self, dot, var: VariableNode, args: list, final):
        self.at(var)
        value = self.var_value(var.ident[0])
        if len(var.ident) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, var, var.ident[1:], args, final)

    def eval_field_chain(self, dot, receiver, node: Node, idents: list[str], args: list | None, final):
        static = None
        if isinstance(receiver, _Iface):
            receiver, static = receiver.value, "interface {}"
        for name in idents[:-1]:
            receiver, static = self.eval_field(dot, name, node, None, MISSING, receiver, static)
        value, _ = self.eval_field(dot, idents[-1], node, args, final, receiver, static)
        return value

    def eval_function(self, dot, node: IdentifierNode, cmd: Node, args: list | None, final):
        self.at(node)
        fn = self.funcs.get(node.ident)
        if fn is None:
            self.errorf(f"{gofmt.go_quote(node.ident)} is not a defined function")
        return self.eval_call(dot, fn, cmd, node.ident, args, final)

    def eval_field(self, dot, name: str, node: Node, args: list | None, final, receiver, static):
        """``receiver.name``: (value, static type of the value when it came out of a plain map or list)."""
        if receiver is None:
            if self.missingkey == "error":
                self.errorf(f"nil data; no entry for key {gofmt.go_quote(name)}")
            return None, None
        typ = static or go_type(receiver)
        has_args = (args is not None and len(args) > 1) or final is not MISSING
        if isinstance(receiver, (Struct, GoMap)):
            method = receiver.methods.get(name)
            if method is not None:
                fn = method if isinstance(method, Method) else Method(method)
                return self.eval_call(dot, Function(fn.fn, *fn.params, variadic=fn.variadic), node, name, args,
                                      final), None
            if isinstance(receiver, Struct) and name in receiver.fields:
                if has_args:
                    self.errorf(f"{name} has arguments but cannot be invoked as function")
                return receiver.fields[name], None
        if isinstance(receiver, NilPointer):
            self.errorf(f"nil pointer evaluating {receiver.type_name}.{name}")
        elif isinstance(receiver, dict):
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name], (None if isinstance(receiver, GoMap) else "interface {}")
            if self.missingkey == "error":
                self.errorf(f"map has no entry for key {gofmt.go_quote(name)}")
            if self.missingkey == "zero" and isinstance(receiver, GoMap):
                return receiver.zero, None
            return None, None
        self.errorf(f"can't evaluate field {name} in type {typ}")

    def eval_call(self, dot, fn: Function, node: Node, name: str, args: list | None, final):
        args = args[1:] if args is not None else []
        num_in = len(args) + (final is not MISSING)
        params = fn.params
        if fn.variadic:
            num_fixed = len(params) - 1
            if num_in < num_fixed:
                self.errorf(f"wrong number of args for {name}: want at least {num_fixed} got {len(args)}")
        else:
            num_fixed = len(args)
            if num_in != len(params):
                self.errorf(f"wrong number of args for {name}: want {len(params)} got {num_in}")
        if fn.builtin and name == "call" and args:
            callee = str(args[0])
            argv = [self.eval_arg(dot, "any", a) for a in args]
            if final is not MISSING:
                argv.append(final)
            try:
                return call_function(callee, *argv)
            except CallError as exc:
                self.at(node)
                self.errorf(f"error calling call: {exc}")
        if fn.builtin and name in ("and", "or"):
            v = None
            for arg in args:
                v = self.eval_arg(dot, "any", arg)
                if is_true(v) == (name == "or"):
                    return v
            if final is not MISSING:
                v = final
            return v
        argv = []
        i = 0
        while i < num_fixed and i < len(args):
            argv.append(self.eval_arg(dot, params[i], args[i]))
            i += 1
        if fn.variadic:
            while i < len(args):
                argv.append(self.eval_arg(dot, params[-1], args[i]))
                i += 1
        if final is not MISSING:
            t = params[-1]
            if fn.variadic and num_in - 1 < num_fixed:
                t = params[num_in - 1]
            argv.append(self.validate_type(final, t))
        try:
            return fn.fn(*argv)
        except CallError as exc:
            self.at(node)
            self.errorf(f"error calling {name}: {exc}")

    def validate_type(self, value, typ: str | None):
        value = _plain(value)
        if value is None:
            if typ in (None, "any", "[]string"):
                return None
            self.errorf(f"invalid value; expected {typ}")
        if typ in (None, "any"):
            return value
        if typ == "string":
            if isinstance(value, str):
                return value
        elif typ == "int":
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif typ == "[]string":
            if isinstance(value, (list, tuple, dict)):
                return value  # Docker's join takes any list since 28.3; its elements print as %v
        elif typ == "bool":
            if isinstance(value, bool):
                return value
        self.errorf(f"wrong type for value; expected {typ}; got {go_type(value)}")

    def eval_arg(self, dot, typ: str | None, node: Node):
        self.at(node)
        if isinstance(node, DotNode):
            return self.validate_type(dot, typ)  # unwraps a range element
        if isinstance(node, NilNode):
            if typ in (None, "any", "[]string"):
                return None
            self.errorf(f"cannot assign nil to {typ}")
        if isinstance(node, FieldNode):
            return self.validate_type(self.eval_field_chain(dot, dot, node, node.ident, [node], MISSING), typ)
        if isinstance(node, VariableNode):
            return self.validate_type(self.eval_variable(dot, node, None, MISSING), typ)
        if isinstance(node, PipeNode):
            return self.validate_type(self.eval_pipeline(dot, node), typ)
        if isinstance(node, IdentifierNode):
            return self.validate_type(self.eval_function(dot, node, node, None, MISSING), typ)
        if isinstance(node, ChainNode):
            return self.validate_type(self.eval_chain(dot, node, None, MISSING), typ)
        if typ == "bool":
            if isinstance(node, BoolNode):
                return node.true
            self.errorf(f"expected bool; found {node}")
        if typ == "string":
            if isinstance(node, StringNode):
                return node.text
            self.errorf(f"expected string; found {node}")
        if typ == "int":
            if isinstance(node, NumberNode) and node.number.is_int:
                return node.number.int
            self.errorf(f"expected integer; found {node}")
        if typ in ("any", None):
            if isinstance(node, BoolNode):
                return node.true
            if isinstance(node, NumberNode):
                return self.ideal_constant(node)
            if isinstance(node, StringNode):
                return node.text
        self.errorf(f"can't handle {node} for arg of type {typ}")

    def print_value(self, node: Node, v) -> None:
        self.at(node)
        if v is None:
            self.out.append("<no value>")
            return
        if isinstance(v, (Function, Method)) or (callable(v) and not isinstance(v, (Struct, GoMap, type))):
            self.errorf(f"can't print {node} of type {go_type(v)}")
        self.out.append(gofmt.value_text(v))


# -- the template --------------------------------------------------------------------------------------


class Template:
    """A parsed template. ``funcs`` names the functions it may call (parse checks the names)."""

    def __init__(self, text: str, funcs: dict[str, Function] | None = None, name: str = ""):
        self.text = text
        self.name = name
        self.funcs = DOCKER_FUNCS if funcs is None else funcs
        self.root, self.trees = parse(text, self.funcs, name)

    def execute(self, data, *, funcs: dict[str, Function] | None = None, missingkey: str = "default") -> str:
        """The text of the template over ``data``; ``missingkey`` is Go's option (default, zero, error)."""
        state = State(self, self.funcs if funcs is None else funcs, missingkey)
        state.push("$", data)
        try:
            state.walk(data, self.root)
        except RecursionError:
            raise TemplateError(f"template: {self.name}: exceeded maximum template depth") from None
        return "".join(state.out)

    def execute_partial(self, data, *, funcs: dict[str, Function] | None = None) -> str:
        """As ``execute``, but an error ends the text instead of raising: what was written stays."""
        state = State(self, self.funcs if funcs is None else funcs, "default")
        state.push("$", data)
        try:
            state.walk(data, self.root)
        except (TemplateError, RecursionError):
            pass
        return "".join(state.out)
