"""Variable substitution in Dockerfile words, with BuildKit's shell-lexer rules.

Words: ``process_word`` turns one word into one string (quotes removed, ``$VAR``,
``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:+alt}``, ``${VAR+alt}``,
``${VAR:?message}``, ``${VAR?message}`` replaced); ``process_words`` also splits on
unquoted whitespace, after substitution, as ``EXPOSE``/``VOLUME`` want. Every
variable looked up is remembered in ``used``, so the cache key can name exactly
the build args a step depends on.

    lex = Lexer(escape="\\\\")
    lex.process_word('"${A:-x} y"', {"A": "1"})   # '1 y'
    lex.used                                      # {'A'}
"""

from __future__ import annotations

from engine.errors import InvalidArgument

_NAME_START = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME_CHARS = _NAME_START | set("0123456789")


class Lexer:
    def __init__(self, escape: str = "\\"):
        self.escape = escape
        self.used: set[str] = set()

    def process_word(self, word: str, env: dict[str, str]) -> str:
        return "".join(ch for ch, _ in self._lex(word, env))

    def process_words(self, word: str, env: dict[str, str]) -> list[str]:
        words, cur, quoted = [], [], False
        for ch, splittable in self._lex(word, env, mark_quotes=True):
            if ch is None:          # a quote was seen: the word exists even if empty
                quoted = True
                continue
            if splittable and ch.isspace():
                if cur or quoted:
                    words.append("".join(cur))
                cur, quoted = [], False
                continue
            cur.append(ch)
        if cur or quoted:
            words.append("".join(cur))
        return words

    # -- the lexer ---------------------------------------------------------

    def _lex(self, word: str, env: dict[str, str], mark_quotes: bool = False):
        """Yield (char, splittable); splittable chars are unquoted (whitespace there splits words)."""
        i, n = 0, len(word)
        while i < n:
            ch = word[i]
            if ch == self.escape:
                if i + 1 < n:
                    yield word[i + 1], False
                    i += 2
                else:
                    yield ch, False
                    i += 1
            elif ch == "'":
                end = word.find("'", i + 1)
                if end < 0:
                    raise InvalidArgument(f"unexpected end of statement while looking for matching single-quote in {word!r}")
                if mark_quotes:
                    yield None, False
                for c in word[i + 1:end]:
                    yield c, False
                i = end + 1
            elif ch == '"':
                if mark_quotes:
                    yield None, False
                i += 1
                while True:
                    if i >= n:
                        raise InvalidArgument(f"unexpected end of statement while looking for matching double-quote in {word!r}")
                    c = word[i]
                    if c == '"':
                        i += 1
                        break
                    if c == "$":
                        value, i = self._dollar(word, i, env)
                        for v in value:
                            yield v, False
                        continue
                    if c == self.escape and i + 1 < n and word[i + 1] in ('"', "$", self.escape):
                        yield word[i + 1], False
                        i += 2
                        continue
                    yield c, False
                    i += 1
            elif ch == "$":
                value, i = self._dollar(word, i, env)
                for v in value:
                    yield v, True
            else:
                yield ch, True
                i += 1

    def _dollar(self, word: str, i: int, env: dict[str, str]) -> tuple[str, int]:
        """Expand the ``$…`` at ``word[i]``; return the value and the index after it."""
        n = len(word)
        j = i + 1
        if j >= n:
            return "$", j
        if word[j] != "{":
            if word[j] not in _NAME_START:
                return "$", j
            k = j
            while k < n and word[k] in _NAME_CHARS:
                k += 1
            name = word[j:k]
            self.used.add(name)
            return env.get(name, ""), k
        # ${...}
        k = j + 1
        while k < n and word[k] in _NAME_CHARS:
            k += 1
        name = word[j + 1:k]
        if not name:
            raise InvalidArgument(f"bad substitution in {word!r}")
        self.used.add(name)
        if k >= n:
            raise InvalidArgument(f"missing '}}' in {word!r}")
        if word[k] == "}":
            return env.get(name, ""), k + 1
        colon = word[k] == ":"
        op_at = k + 1 if colon else k
        if op_at >= n or word[op_at] not in "-+?":
            raise InvalidArgument(f"unsupported modifier in {word!r}: use ${{VAR:-x}}, ${{VAR-x}}, ${{VAR:+x}}, "
                                  "${VAR+x}, ${VAR:?msg} or ${VAR?msg}")
        op = word[op_at]
        # The modifier's word runs to the matching brace and is itself expanded.
        depth, m = 1, op_at + 1
        while m < n:
            if word[m] == self.escape:
                m += 2
                continue
            if word[m] == "{":
                depth += 1
            elif word[m] == "}":
                depth -= 1
                if depth == 0:
                    break
            m += 1
        if m >= n:
            raise InvalidArgument(f"missing '}}' in {word!r}")
        inner = self.process_word(word[op_at + 1:m], env)
        is_set = name in env
        value = env.get(name, "")
        present = (is_set and value != "") if colon else is_set
        if op == "-":
            out = value if present else inner
        elif op == "+":
            out = inner if present else ""
        else:
            if not present:
                raise InvalidArgument(f"{name}: {inner or 'is not allowed to be unset'}")
            out = value
        return out, m + 1
