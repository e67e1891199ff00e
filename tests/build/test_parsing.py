"""Dockerfile words, .dockerignore rules and the parser: no containers needed."""

from __future__ import annotations

import pytest

from engine.build.dockerfile import parse
from engine.build.dockerignore import IgnoreMatcher
from engine.build.expand import Lexer
from engine.errors import InvalidArgument, Unsupported


def test_substitution_handles_defaults_alternatives_quotes_and_escapes():
    lex = Lexer()
    env = {"A": "1", "EMPTY": "", "SP": "x y"}
    assert lex.process_word("${A:-d} ${B:-d} ${EMPTY:-d} ${EMPTY-d}", env) == "1 d d "
    assert lex.process_word("${A:+alt}|${EMPTY:+alt}|${EMPTY+alt}|${B+alt}", env) == "alt||alt|"
    assert lex.process_word("'$A' \"$A\" \\$A $", env) == "$A 1 $A $"
    assert lex.process_word("${B:-${A}x}", env) == "1x"
    assert lex.process_words('a "b c" $SP \'d e\'', env) == ["a", "b c", "x", "y", "d e"]
    assert lex.used >= {"A", "B", "EMPTY", "SP"}
    with pytest.raises(InvalidArgument, match="must be set"):
        lex.process_word("${B:?must be set}", env)


def test_backtick_escape_leaves_backslashes_alone():
    assert Lexer("`").process_word(r"C:\dir `$A", {"A": "1"}) == r"C:\dir $A"


@pytest.mark.parametrize("path,ignored", [
    ("a.log", True), ("keep.log", False), ("sub/a.log", False), ("x/y/z.tmp", True), ("z.tmp", True),
    ("build", True), ("build/deep/file", True), ("docs/a.md", True), ("docs/README.md", False),
    ("abs", True), ("src/main.c", False), ("secret.key", True), ("secrets/key", False),
])
def test_dockerignore_follows_dockers_rules(path, ignored):
    m = IgnoreMatcher.parse("# comment\n\n*.log\n!keep.log\n  build/  \n**/*.tmp\n/abs\ndocs\n!docs/README.md\n"
                            "secret?key\n")
    assert m.ignored(path) is ignored


def test_parser_reads_directives_continuations_comments_and_stages():
    text = ("# syntax=docker/dockerfile:1\n# escape=`\nARG BASE=scratch\nFROM ${BASE} AS One\n"
            "RUN echo a `\n  b\n# a comment\nCOPY --from=x --chown=1:2 a b/\nFROM one\nRUN <<EOF\necho hi\nEOF\n")
    df = parse(text)
    assert df.escape == "`" and df.syntax == "docker/dockerfile:1"
    assert [a.original for a in df.meta_args] == ["ARG BASE=scratch"]
    assert [(s.name, s.base) for s in df.stages] == [("one", "${BASE}"), (None, "one")]
    run, copy = df.stages[0].instructions
    assert run.args == ["echo a   b"]
    assert copy.flags == {"from": "x", "chown": "1:2"} and copy.args == ["a", "b/"]
    assert df.stages[1].instructions[0].heredocs


def test_parser_refuses_what_it_cannot_build():
    with pytest.raises(InvalidArgument, match="only ARG may come before"):
        parse("ENV A=1\nFROM scratch\n")
    with pytest.raises(InvalidArgument, match="unknown flag"):
        parse("FROM scratch\nCOPY --bogus=1 a b\n")
    with pytest.raises(Unsupported, match="frontend"):
        parse("# syntax=example.com/evil/frontend\nFROM scratch\n")
    with pytest.raises(InvalidArgument, match="unknown instruction"):
        parse("FROM scratch\nFROBNICATE x\n")
