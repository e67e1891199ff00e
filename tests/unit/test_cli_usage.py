"""Usage errors of ``python -m engine`` are Docker's: 125 for a bad flag, 1 for missing or extra
arguments, never argparse's 2 and never a traceback, for every subcommand there is."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from engine.__main__ import build_parser, main
from engine.cli_usage import classify


def command_paths(parser: argparse.ArgumentParser, prefix=()) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every leaf command (``run``, ``image ls``, ``network sandbox create``…) with its parser."""
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if sub is None:
        return [(prefix, parser)]
    out, seen = [], set()
    for name, child in sub.choices.items():
        if id(child) in seen:  # aliases (ls/list) share one parser
            continue
        seen.add(id(child))
        out += command_paths(child, prefix + (name,))
    return out


def required_positionals(parser: argparse.ArgumentParser) -> list[str]:
    return [a.dest for a in parser._actions if not a.option_strings and a.required
            and a.nargs not in ("?", "*", argparse.REMAINDER)]


LEAVES = command_paths(build_parser())


@pytest.fixture(autouse=True)
def private_root(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTH_ROOT", str(tmp_path / "root"))


def test_the_sweep_sees_every_command():
    names = {" ".join(path) for path, _ in LEAVES}
    assert {"run", "ps", "image ls", "volume prune", "network create", "build", "events", "top"} <= names
    assert len(LEAVES) > 40


@pytest.mark.parametrize("path", [p for p, _ in LEAVES], ids=[" ".join(p) for p, _ in LEAVES])
def test_an_unknown_flag_exits_125_with_dockers_words_and_no_traceback(path, capsys):
    code = main([*path, "--no-such-flag"])
    err = capsys.readouterr().err
    assert code == 125, err
    assert "unknown flag: --no-such-flag" in err
    assert "Traceback" not in err
    assert f"python -m engine {' '.join(path)}" in err  # the command's own usage, not the whole list


@pytest.mark.parametrize("path", [p for p, parser in LEAVES if required_positionals(parser)],
                         ids=[" ".join(p) for p, parser in LEAVES if required_positionals(parser)])
def test_missing_arguments_exit_1_as_dockers_and_no_traceback(path, capsys):
    code = main(list(path))
    err = capsys.readouterr().err
    assert code == 1, err
    assert "requires more arguments" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, code, words", [
    (["stop", "-t", "abc", "x"], 125, 'invalid argument \'abc\' for "-t, --time, --timeout" flag'),
    (["logs", "-n"], 125, "flag needs an argument: --tail"),
    (["bogus"], 1, "unknown command: bogus"),
    (["image", "bogus"], 1, "unknown command: bogus"),
    (["images", "a", "b"], 1, "too many arguments: b"),
    (["history", "--human=maybe", "x"], 125, "invalid boolean value 'maybe'"),
])
def test_argument_errors_have_dockers_codes(argv, code, words, capsys):
    assert main(argv) == code
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_help_still_exits_0(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["ps", "--help"])
    assert exc.value.code == 0
    assert "usage: python -m engine ps" in capsys.readouterr().out


@pytest.mark.parametrize("message, code", [
    ("unrecognized arguments: --x", 125), ("unrecognized arguments: a b", 1),
    ("the following arguments are required: name", 1), ("argument -n/--last: invalid int value: 'x'", 125),
    ("argument command: invalid choice: 'zz' (choose from 'a', 'b')", 1),
])
def test_argparse_messages_map_to_dockers_codes(message, code):
    assert classify(message)[1] == code


def test_load_of_a_missing_file_and_save_into_a_missing_directory_are_plain_errors(tmp_path, capsys):
    assert main(["load", "-i", str(tmp_path / "nope.tar")]) == 1
    assert main(["save", "-o", str(tmp_path / "no" / "dir.tar"), "busybox"]) == 1
    err = capsys.readouterr().err
    assert f"open {tmp_path / 'nope.tar'}: no such file or directory" in err
    assert f'invalid output path: directory "{tmp_path / "no"}" does not exist' in err
    assert "Traceback" not in err
    assert not (tmp_path / "no").exists()


def test_an_unexpected_failure_is_one_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    import engine.__main__ as entry

    def broken(args):
        raise KeyError("surprise")

    monkeypatch.setattr(entry, "cmd_tag", broken)  # the parser takes the command when it is built
    monkeypatch.delenv("BERTH_DEBUG", raising=False)
    assert main(["tag", "a", "b"]) == 1
    err = capsys.readouterr().err
    assert "internal error: KeyError" in err and "Traceback" not in err


def test_the_vendored_docker_key_list_names_its_source():
    data = json.loads((Path(__file__).parent / "docker_inspect_keys.json").read_text())
    assert "v1.50.yaml" in data["source"] and len(data["keys"]) > 150
    assert "HostConfig.CgroupnsMode" in data["keys"] and "NetworkSettings.Networks.*.DNSNames" in data["keys"]


def test_render_lays_out_dockers_keys_in_dockers_order_and_keeps_what_it_was_given():
    from engine.containers.render import complete

    doc = complete({"Id": "abc", "HostConfig": {"Memory": 5, "Tmpfs": None}, "State": {"Status": "running",
                                                                                        "Health": {"Status": "ok"}},
                    "Config": {"ExposedPorts": None, "Env": ["A=1"]}, "Extra": 1,
                    "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "10.0.0.2"}}}})
    assert list(doc)[:4] == ["Id", "Created", "Path", "Args"] and list(doc)[-1] == "Extra"
    assert doc["HostConfig"]["Memory"] == 5 and doc["HostConfig"]["IpcMode"] == "private"
    assert "Tmpfs" not in doc["HostConfig"] and "ExposedPorts" not in doc["Config"]  # Go's omitempty
    assert doc["State"]["Health"] == {"Status": "ok"} and list(doc["State"])[-1] == "Health"
    assert doc["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == "10.0.0.2"
    assert doc["NetworkSettings"]["Networks"]["bridge"]["GwPriority"] == 0
    assert complete({"HostConfig": {"Privileged": True}})["HostConfig"]["MaskedPaths"] is None
