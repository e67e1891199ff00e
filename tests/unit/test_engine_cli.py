"""``python -m engine`` builds only the part of its parser a command needs, and that
part knows every command the whole parser knows."""

import argparse

from engine.__main__ import COMMAND_MODULES, OWN_COMMANDS, build_parser, command_of


def commands(parser: argparse.ArgumentParser) -> set[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_the_command_map_names_every_top_level_command_exactly_once():
    whole = commands(build_parser())
    listed = [OWN_COMMANDS, *COMMAND_MODULES.values()]
    assert set().union(*listed) == whole
    assert sum(len(names) for names in listed) == len(whole)


def test_each_command_parses_with_only_its_own_part():
    for command in commands(build_parser()):
        part = build_parser(command)
        assert command in commands(part)
        assert len(commands(part)) < len(commands(build_parser()))


def test_the_command_is_found_past_the_global_root_option():
    assert command_of(["--root", "/x", "run", "-d", "busybox"]) == "run"
    assert command_of(["--root=/x", "ps"]) == "ps"
    assert command_of(["--help"]) is None
