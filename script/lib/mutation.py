"""script/mutation's driver: one mutmut run per module of script/mutation.toml, then the scores.

Each module runs in a folder of its own, ``mutants/<name>/``, which holds links to
``engine/``, ``tests/`` and ``pyproject.toml`` and a ``setup.cfg`` whose ``[mutmut]``
section names that module alone (``only_mutate``) and its own tests
(``pytest_add_cli_args_test_selection``). mutmut copies the tree into
``mutants/<name>/mutants/`` and mutates only there; nothing in the work tree changes.
A module's run starts from nothing (its folder is removed first), so a score never
rests on an earlier run's verdicts; ``--again`` re-tests only the survivors of the last
run in place, which is quick while writing the tests that kill them.

Score: killed (a test failed, or the mutant ran past its time limit) out of every
mutant of the module, "no tests" counted as not killed.

    script/mutation                  every module but the slow ones, then the table
    script/mutation --all            the slow ones (the --format package) too
    script/mutation ports firewall   these modules only
    script/mutation --diff ports     and each survivor's diff
    script/mutation --last --diff    the last run's table and survivors, running nothing
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAP = ROOT / "script" / "mutation.toml"
WORK = ROOT / "mutants"
TARGET = 90.0
LINKED = ("engine", "tests", "pyproject.toml")   # what mutmut sees of the repository


@dataclass
class Module:
    name: str
    sources: list[str]
    tests: list[str]
    functions: list[str] = field(default_factory=list)
    deselect: list[str] = field(default_factory=list)
    slow: bool = False

    @property
    def work(self) -> Path:
        return WORK / self.name

    @property
    def source(self) -> str:
        return " ".join(self.sources)

    def only_mutate(self) -> list[str]:
        return [f"{s}/*" if (ROOT / s).is_dir() else s for s in self.sources]

    def files(self) -> list[str]:
        """The .py files mutated, relative to the repository."""
        out = []
        for s in self.sources:
            src = ROOT / s
            out += sorted(str(p.relative_to(ROOT)) for p in src.rglob("*.py")) if src.is_dir() else [s]
        return out

    def patterns(self) -> list[str]:
        """mutmut's mutant names to run (fnmatch), or [] for every mutant of the files."""
        modules = [f.removesuffix(".py").replace("/", ".") for f in self.files()]
        return [f"{module}.{fn}__mutmut_*" for module in modules for fn in self.functions]


def load(path: Path = MAP) -> list[Module]:
    data = tomllib.loads(path.read_text())
    out = []
    for m in data["module"]:
        sources = m["source"] if isinstance(m["source"], list) else [m["source"]]
        out.append(Module(name=m["name"], sources=sources, tests=list(m["tests"]),
                          functions=list(m.get("functions", [])), deselect=list(m.get("deselect", [])),
                          slow=bool(m.get("slow", False))))
    return out


def setup_cfg(module: Module) -> str:
    def lines(values) -> str:
        return "".join(f"\n    {v}" for v in values)

    pytest_args = ["-p", "no:django", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestConfigWarning"]
    for test in module.deselect:
        pytest_args += ["--deselect", test]
    return (
        "# Written by script/mutation for this module's run; the map is script/mutation.toml.\n"
        "[mutmut]\n"
        f"source_paths ={lines(['engine'])}\n"
        f"only_mutate ={lines(module.only_mutate())}\n"
        f"pytest_add_cli_args_test_selection ={lines(module.tests)}\n"
        # no Django (these tests need none), no cache folder
        f"pytest_add_cli_args ={lines(pytest_args)}\n"
        "use_git_change_detection = false\n"
    )


def prepare(module: Module) -> None:
    if module.work.exists():
        shutil.rmtree(module.work)
    module.work.mkdir(parents=True)
    for name in LINKED:
        (module.work / name).symlink_to(ROOT / name)
    (module.work / "setup.cfg").write_text(setup_cfg(module))


def mutmut(module: Module, *args: str, log=None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("mutmut")
    return subprocess.run([str(exe), *args], cwd=module.work, stdout=log or subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def verdicts(module: Module) -> dict[str, str]:
    """Mutant name → mutmut's status ("killed", "survived", "timeout", "no tests", …)."""
    from mutmut.stats import status_by_exit_code

    patterns = module.patterns()
    out = {}
    for f in module.files():
        meta = module.work / "mutants" / (f + ".meta")
        if not meta.exists():
            continue
        for key, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if patterns and not any(fnmatch.fnmatchcase(key, p) for p in patterns):
                continue
            out[key] = status_by_exit_code[code]
    return out


@dataclass
class Score:
    module: Module
    results: dict[str, str]
    seconds: float
    failed: str = ""

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def killed(self) -> int:
        return sum(1 for s in self.results.values() if s in ("killed", "timeout"))

    @property
    def percent(self) -> float:
        return 100.0 * self.killed / self.total if self.total else 0.0

    def survivors(self) -> list[str]:
        return sorted(k for k, s in self.results.items() if s not in ("killed", "timeout"))


def run(module: Module, *, jobs: int, again: bool) -> Score:
    start = time.monotonic()
    names = module.patterns()
    if again and (module.work / "mutants").exists():
        names = [k for k, s in verdicts(module).items() if s not in ("killed", "timeout")]
        if not names:
            return Score(module, verdicts(module), 0.0)
        (module.work / "setup.cfg").write_text(setup_cfg(module))
    else:
        prepare(module)
    with open(module.work / "mutmut.log", "a") as log:
        done = mutmut(module, "run", "--max-children", str(jobs), *names, log=log)
    results = verdicts(module)
    failed = ""
    if done.returncode != 0 or not results:
        tail = (module.work / "mutmut.log").read_text().splitlines()[-15:]
        failed = f"mutmut exited {done.returncode}; the end of {module.work / 'mutmut.log'}:\n" + "\n".join(tail)
    return Score(module, results, time.monotonic() - start, failed)


def table(scores: list[Score]) -> str:
    rows = [("module", "killed", "total", "score", "time", "mutated")]
    for s in scores:
        src = s.module.source + (f" ({', '.join(s.module.functions)})" if s.module.functions else "")
        rows.append((s.module.name, str(s.killed), str(s.total), f"{s.percent:.1f} %", f"{s.seconds:.0f} s", src))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i in (0, 5) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     .rstrip() for r in rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="script/mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="names from script/mutation.toml (default: all but the slow)")
    parser.add_argument("--all", action="store_true", help="the slow modules too")
    parser.add_argument("--diff", action="store_true", help="print each survivor's diff")
    parser.add_argument("--again", action="store_true", help="re-test only the last run's survivors, in place")
    parser.add_argument("--last", action="store_true", help="run nothing: the table and survivors of the last run")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="mutants tested at once")
    args = parser.parse_args(argv)

    modules = load()
    known = {m.name for m in modules}
    unknown = [n for n in args.modules if n not in known]
    if unknown:
        parser.error(f"unknown module {', '.join(unknown)}; script/mutation.toml has {', '.join(sorted(known))}")
    chosen = [m for m in modules if m.name in args.modules or (not args.modules and (args.all or not m.slow))]

    scores = []
    for m in chosen:
        if args.last:
            if (m.work / "mutants").exists():
                scores.append(Score(m, verdicts(m), 0.0))
            continue
        print(f"==> mutating {m.source} against {' '.join(m.tests)}", file=sys.stderr, flush=True)
        score = run(m, jobs=args.jobs, again=args.again)
        scores.append(score)
        print(f"    {score.killed}/{score.total} killed ({score.percent:.1f} %) in {score.seconds:.0f} s",
              file=sys.stderr, flush=True)
        if score.failed:
            print(score.failed, file=sys.stderr)

    print()
    print(table(scores))
    for s in scores:
        if s.survivors():
            print(f"\nnot killed in {s.module.name}:")
        for key in s.survivors():
            print(f"  {s.results[key]:9} {key}")
            if args.diff:
                print("    " + mutmut(s.module, "show", key).stdout.rstrip().replace("\n", "\n    "))
    low = [s.module.name for s in scores if s.failed or s.percent < TARGET]
    if low:
        print(f"\nunder {TARGET:.0f} % killed (or failed to run): {', '.join(low)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
