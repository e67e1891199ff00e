"""Usage errors of ``python -m engine`` with Docker's words and exit codes, never argparse's 2.

Docker's CLI (28.2) answers a bad *flag* — one it does not know, a value that does not
parse, a flag without its value — with 125, and a wrong *number of arguments* or an
unknown command with 1::

    $ docker run --badflag x      → unknown flag: --badflag                 (125)
    $ docker stop -t abc x        → invalid argument "abc" for "-t, --time" flag  (125)
    $ docker logs                 → 'docker logs' requires 1 argument        (1)
    $ docker bogus                → unknown command: docker bogus            (1)

``CommandParser`` is an ``argparse.ArgumentParser`` whose ``error`` raises ``UsageError``
with that message and code (its subparsers are made of the same class); ``main`` prints
it with the command's usage line.
"""

from __future__ import annotations

import argparse
import re
import sys


class UsageError(Exception):
    def __init__(self, message: str, exit_code: int, usage: str = "", prog: str = ""):
        super().__init__(message)
        self.exit_code = exit_code
        self.usage = usage
        self.prog = prog

    def text(self) -> str:
        usage = f"\n\n{self.usage.rstrip()}" if self.usage else ""
        return f"{self.prog}: {self}{usage}\n\nRun '{self.prog} --help' for more information"


FLAG_ERRORS = (
    (re.compile(r"argument (?P<flag>\S+): invalid (?:\S+ )?value: (?P<value>.*)"),
     lambda m: f'invalid argument {m["value"]} for "{m["flag"].replace("/", ", ")}" flag'),
    (re.compile(r"argument (?P<flag>-\S+): expected (?:one|at least one) argument"),
     lambda m: f"flag needs an argument: {m['flag'].split('/')[-1]}"),
    (re.compile(r"argument (?P<flag>-\S+): (?P<rest>.*)"), lambda m: f"invalid flag {m['flag']}: {m['rest']}"),
)


def classify(message: str) -> tuple[str, int]:
    """(Docker's message, exit code) for an argparse error message."""
    if message.startswith("unrecognized arguments: "):
        extra = message.removeprefix("unrecognized arguments: ").split()
        flag = next((a for a in extra if a.startswith("-") and a != "-"), None)
        if flag:
            return f"unknown flag: {flag.split('=')[0]}", 125
        return f"too many arguments: {' '.join(extra)}", 1
    if message.startswith("the following arguments are required: "):
        return f"requires more arguments: {message.removeprefix('the following arguments are required: ')}", 1
    m = re.match(r"argument \S+: invalid choice: '(?P<name>[^']*)'", message)
    if m:
        return f"unknown command: {m['name']}", 1
    for pattern, words in FLAG_ERRORS:
        m = pattern.match(message)
        if m:
            return words(m), 125
    return message, 125


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser that raises ``UsageError`` instead of printing and exiting with 2."""

    def error(self, message: str):  # argparse calls this for every usage error
        if message.startswith("the following arguments are required: "):
            # argparse checks the arguments first; Docker's flags come first: an unknown flag is 125
            flag = self._unknown_flag()
            if flag:
                message = f"unrecognized arguments: {flag}"
        words, code = classify(message)
        raise UsageError(words, code, usage=self.format_usage(), prog=self.prog)

    def _unknown_flag(self) -> str | None:
        for token in getattr(self, "_given", []):
            if token == "--":
                return None
            if token.startswith("-") and token != "-" and not token[1:2].isdigit():
                parsed = self._parse_optional(token)
                options = parsed if isinstance(parsed, list) else [parsed] if parsed else []
                if options and all(option[0] is None for option in options):
                    return token
        return None

    def parse_known_args(self, args=None, namespace=None):
        self._given = list(sys.argv[1:] if args is None else args)
        # A subcommand's parser reports what it does not know itself, with its own usage line
        # (argparse leaves it to the top parser, whose usage lists every command).
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error("unrecognized arguments: " + " ".join(extras))
        return namespace, extras
