"""The borders of ../shared/ARCHITECTURE.md, kept by walking every import."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "engine": {"django", "celery", "redis", "kombu", "channels", "rest_framework", "workers", "webui"},
    "workers": {"django", "channels", "rest_framework", "webui", "psycopg", "sqlite3"},
}
# webui never touches a host: it may use the engine's pure data modules only.
WEBUI_ENGINE_ALLOWED = {"engine.errors", "engine.reference", "engine.logs.times"}
WEBUI_FORBIDDEN = {"pyroute2", "workers.heartbeat", "workers.app", "workers.__main__"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def python_files(package: str):
    return sorted((ROOT / package).rglob("*.py"))


def test_every_package_has_code_to_check():
    for package in ("engine", "workers", "webui"):
        assert python_files(package), f"{package}/ has no Python files"


@pytest.mark.parametrize("package", ["engine", "workers"])
def test_package_imports_nothing_across_its_border(package):
    offenders = []
    for path in python_files(package):
        for name in imports_of(path):
            if name.split(".")[0] in FORBIDDEN[package]:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_webui_imports_only_pure_engine_modules_and_no_host_code():
    offenders = []
    for path in python_files("webui"):
        for name in imports_of(path):
            top = name.split(".")[0]
            if top == "engine" and name not in WEBUI_ENGINE_ALLOWED:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
            if name in WEBUI_FORBIDDEN or top == "pyroute2":
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


@pytest.mark.parametrize("module", sorted(WEBUI_ENGINE_ALLOWED))
def test_engine_modules_the_web_may_use_import_only_the_standard_library(module):
    import sys

    path = ROOT / (module.replace(".", "/") + ".py")
    if not path.exists():
        pytest.skip(f"{module} does not exist yet")
    for name in imports_of(path):
        top = name.split(".")[0]
        assert top in sys.stdlib_module_names or name in WEBUI_ENGINE_ALLOWED or top == "__future__", (
            f"{module} imports {name}, which is not the standard library"
        )


def test_border_walker_sees_a_forbidden_import(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("from django.db import models\nimport celery.app\n")
    assert {"django.db", "celery.app"} <= imports_of(sample)
