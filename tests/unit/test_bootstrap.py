"""script/lib/bootstrap.sh: one .venv stamp serves script/server and script/test, so the
first server a test starts does not reinstall the project inside its start timeout."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A stand-in for .venv/bin/python that only logs what it is asked to do: the test is
# about when bootstrap_venv installs, not about pip.
FAKE_PYTHON = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/../calls"
"""


def project(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "constraints.txt").write_text("pytest==9.2.0\n")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return tmp_path


def bootstrap(where, *extras):
    script = f'source "{ROOT}/script/lib/bootstrap.sh"; bootstrap_venv {" ".join(extras)}'
    subprocess.run(["bash", "-c", script], cwd=where, check=True, capture_output=True,
                   env=dict(os.environ, BERTH_PYTHON="python3"), timeout=60)
    calls = where / ".venv" / "calls"
    made = calls.read_text().splitlines() if calls.exists() else []
    calls.unlink(missing_ok=True)
    return [c for c in made if "install -q -c" in c]


def test_the_venv_script_test_made_serves_script_server_without_a_reinstall(tmp_path):
    where = project(tmp_path)
    assert bootstrap(where, "test") == ["-m pip install -q -c constraints.txt -e .[test]"]
    assert bootstrap(where) == []          # script/server
    assert bootstrap(where, "test") == []  # script/test again


def test_a_server_venv_gets_the_test_extras_once_and_keeps_them(tmp_path):
    where = project(tmp_path)
    assert bootstrap(where) == ["-m pip install -q -c constraints.txt -e ."]
    assert bootstrap(where, "test") == ["-m pip install -q -c constraints.txt -e .[test]"]
    assert bootstrap(where) == [] and bootstrap(where, "test") == []


def test_a_changed_lock_file_reinstalls_with_the_extras_already_there(tmp_path):
    where = project(tmp_path)
    bootstrap(where, "test")
    (where / "constraints.txt").write_text("pytest==9.2.1\n")
    assert bootstrap(where) == ["-m pip install -q -c constraints.txt -e .[test]"]
