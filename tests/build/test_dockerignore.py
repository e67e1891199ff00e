""".dockerignore patterns, one rule at a time: what each wildcard, escape and exception matches."""

from __future__ import annotations

import pytest

from engine.build.dockerignore import IgnoreMatcher, clean_pattern
from engine.errors import InvalidArgument


def ignored(patterns: str, *paths: str) -> list[bool]:
    m = IgnoreMatcher.parse(patterns)
    return [m.ignored(p) for p in paths]


@pytest.mark.parametrize("pattern, paths, expected", [
    ("*.log", ["a.log", ".log", "sub/a.log", "a.log.gz"], [True, True, False, False]),
    ("a/**", ["a/x", "a/x/y", "a", "b/x"], [True, True, False, False]),
    ("**", ["x", "x/y/z", ".hidden"], [True, True, True]),
    ("**/x", ["x", "d/x", "d/e/x", "d/xx"], [True, True, True, False]),
    ("a/**/b", ["a/b", "a/x/b", "a/x/y/b", "a/xb", "b"], [True, True, True, False, False]),
    ("a**b", ["ab", "a/b", "a/x/b", "axb"], [True, True, True, False]),
    ("?.txt", ["a.txt", "ab.txt", "/.txt"], [True, False, False]),
    ("secret?key", ["secret.key", "secret/key"], [True, False]),
    ("\\*.log", ["*.log", "a.log"], [True, False]),
    ("a\\?b", ["a?b", "axb"], [True, False]),
    ("a\\", ["a\\", "a"], [True, False]),                      # a lone trailing backslash is itself
    ("ab\\c", ["abc", "ab\\c"], [True, False]),                 # the last character escaped
    ("[ab].txt", ["a.txt", "b.txt", "c.txt", "ab.txt"], [True, True, False, False]),
    ("[!ab].txt", ["a.txt", "c.txt"], [False, True]),
    ("[^ab].txt", ["b.txt", "d.txt"], [False, True]),
    ("x[a-c]y", ["xby", "xdy"], [True, False]),
    ("[a", ["[a", "a"], [True, False]),                         # no closing bracket: a literal '['
    ("[\\]x", ["\\x", "]x", "Xx"], [True, False, False]),       # a backslash inside brackets is a backslash
    ("[a].[b]", ["a.b", "axb"], [True, False]),                 # between two classes, '.' is a dot
    ("x[ab][cd]", ["xac", "xbd", "xab"], [True, True, False]),
    ("/abs", ["abs", "x/abs"], [True, False]),
    ("./a//b/", ["a/b", "a/b/c", "a"], [True, True, False]),
    ("docs", ["docs/a/b.md"], [True]),                          # a matching parent takes everything below
])
def test_each_wildcard_matches_what_dockers_patternmatcher_matches(pattern, paths, expected):
    assert ignored(pattern, *paths) == expected


def test_names_with_newlines_are_matched_like_any_other_name():
    # a hostile context may hold "a\nb": ** must still cover it, and so must * and ?
    assert ignored("x/**\nsecret*\nk?y", "x/a\nb", "secret\nfile", "k\ny") == [True, True, True]


def test_comments_blanks_and_bare_exclamation_marks_are_no_patterns():
    assert clean_pattern("") is None
    assert clean_pattern("   ") is None
    assert clean_pattern("# a comment") is None
    assert clean_pattern("  # indented comment") is None
    assert clean_pattern("!") is None
    assert clean_pattern("!   ") is None
    assert clean_pattern("a#b") == ("a#b", False)
    assert clean_pattern("! keep.log ") == ("keep.log", True)
    assert clean_pattern("/") == ("/", False)                # as Go's Clean leaves it: matches no file
    assert clean_pattern("/a") == ("a", False)
    assert clean_pattern("/Xfile") == ("Xfile", False)
    assert clean_pattern("//") == ("/", False)               # Go's Clean("//") is "/"
    assert clean_pattern("//a//b") == ("a/b", False)
    assert clean_pattern("//Xa") == ("Xa", False)
    assert clean_pattern("a/../b") == ("b", False)
    assert [p.text for p in IgnoreMatcher.parse("# c\n\n*.log\n!\n!keep\n").patterns] == ["*.log", "keep"]


def test_the_last_matching_pattern_decides():
    patterns = "*.log\n!keep*.log\nkeep-not.log\n"
    assert ignored(patterns, "a.log", "keep1.log", "keep-not.log") == [True, False, True]
    assert ignored("!a\na", "a") == [True]
    assert ignored("a\n!a", "a") == [False]
    assert ignored("build\n!build/keep\n", "build/keep", "build/other", "build/keep/deep") == [False, True, False]


def test_an_ignored_directory_is_walked_only_when_an_exception_may_be_below():
    m = IgnoreMatcher.parse("build\n!build/keep.txt\n")
    assert m.may_hold_exceptions("build") is True
    assert m.may_hold_exceptions("build/") is True
    assert m.may_hold_exceptions("other") is False
    assert m.may_hold_exceptions("buildx") is False
    m = IgnoreMatcher.parse("docs\n!docs/a/*.md\n")
    assert m.may_hold_exceptions("docs") is True          # the exception's literal part is below
    assert m.may_hold_exceptions("docs/a") is True
    assert m.may_hold_exceptions("docs/a/b") is True      # below the literal part it walks (a cheap test, on the safe side)
    assert m.may_hold_exceptions("docs/b") is False
    m = IgnoreMatcher.parse("*\n!**/keep\n")
    assert m.may_hold_exceptions("any/where") is True     # ** may be anywhere
    m = IgnoreMatcher.parse("*\n!*/keep\n")
    assert m.may_hold_exceptions("a") is True             # nothing literal before the wildcard
    assert IgnoreMatcher.parse("build\n").may_hold_exceptions("build") is False
    assert IgnoreMatcher.parse("build\n!other\n").may_hold_exceptions("build") is False
    m = IgnoreMatcher.parse("*\n!bX/keep\n")
    assert m.may_hold_exceptions("bX") is True
    assert m.may_hold_exceptions("b") is False
    m = IgnoreMatcher.parse("*\n!a/**/keep\n")
    assert m.may_hold_exceptions("a/b") is True
    assert m.may_hold_exceptions("b") is False            # ** below a/ never reaches b/
    m = IgnoreMatcher.parse("a\n!b/c\n!a/d\n")
    assert m.may_hold_exceptions("a") is True             # the second exception is the one below


@pytest.mark.parametrize("pattern", ["[]", "[]x]", "a/[z-a]"])
def test_a_pattern_that_is_no_pattern_is_refused_by_name(pattern):
    with pytest.raises(InvalidArgument) as exc:
        IgnoreMatcher.parse(f"ok\n  {pattern}  \n")
    assert str(exc.value).startswith(f".dockerignore: invalid pattern {pattern!r}: ")


def test_a_context_with_a_bad_or_escaping_dockerignore_is_refused_and_leaves_nothing(tmp_path):
    import io
    import os
    import tarfile

    from engine.build.context import Context
    from engine.errors import UnsafeContent

    def context_tar(ignore: bytes | None = None, link: str | None = None) -> io.BytesIO:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, data in (("Dockerfile", b"FROM scratch\n"), (".dockerignore", ignore)):
                if data is not None:
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
            if link:
                info = tarfile.TarInfo(".dockerignore")
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
        buf.seek(0)
        return buf

    fds = len(os.listdir("/proc/self/fd"))
    with pytest.raises(InvalidArgument, match=r"^\.dockerignore: invalid pattern '\[\]'"):
        Context.from_tar(context_tar(b"*.log\n[]\n"), tmp_path / "unpacked")
    with pytest.raises(UnsafeContent, match="points outside the build context"):
        Context.from_tar(context_tar(link="../../../../etc/passwd"), tmp_path / "unpacked")
    assert list((tmp_path / "unpacked").iterdir()) == []
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / ".dockerignore").write_text("a/[z-a]\n")
    with pytest.raises(InvalidArgument, match="invalid pattern 'a/\\[z-a\\]'"):
        Context.from_directory(tmp_path / "dir")
    assert len(os.listdir("/proc/self/fd")) == fds                 # the context's descriptor was closed
    ctx = Context.from_tar(context_tar(b"*.log\n"), tmp_path / "unpacked")
    try:
        assert ctx.ignore.ignored("x.log") and not ctx.ignore.ignored("Dockerfile")
    finally:
        ctx.close()
    assert list((tmp_path / "unpacked").iterdir()) == []
