"""script/mutation's map (script/mutation.toml) names modules and tests that exist, so that it cannot rot."""

from __future__ import annotations

import ast
import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules() -> list[dict]:
    return tomllib.loads((ROOT / "script" / "mutation.toml").read_text())["module"]


def test_every_module_of_the_mutation_map_names_sources_and_tests_that_exist():
    names = [m["name"] for m in modules()]
    assert names and len(names) == len(set(names)), names
    for m in modules():
        sources = m["source"] if isinstance(m["source"], list) else [m["source"]]
        for source in sources:
            assert (ROOT / source).exists() and (source.endswith(".py") or (ROOT / source).is_dir()), source
        assert m["tests"], m["name"]
        for test in m["tests"] + m.get("deselect", []):
            path = test.split("::")[0]
            assert path.startswith("tests/") and (ROOT / path).is_file(), f"{m['name']}: {test}"
        for test in m.get("deselect", []):
            function = test.split("::")[1]
            tree = ast.parse((ROOT / test.split("::")[0]).read_text())
            assert function in {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}, test


def test_every_function_pattern_names_a_function_of_its_source():
    for m in modules():
        for pattern in m.get("functions", []):
            assert pattern.startswith(("x_", "xǁ")), pattern
            found = set()
            for node in ast.walk(ast.parse((ROOT / m["source"]).read_text())):
                if isinstance(node, ast.ClassDef):
                    found |= {f"xǁ{node.name}ǁ{f.name}" for f in node.body if isinstance(f, ast.FunctionDef)}
                elif isinstance(node, ast.FunctionDef):
                    found.add(f"x_{node.name}")
            assert fnmatch.filter(found, pattern), f"{m['name']}: {pattern} matches no function of {m['source']}"


def test_mutants_stay_out_of_git_and_out_of_the_test_run():
    assert "mutants/" in (ROOT / ".gitignore").read_text().splitlines()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "mutants" in pyproject["tool"]["pytest"]["ini_options"]["norecursedirs"]
