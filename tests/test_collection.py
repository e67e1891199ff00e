"""Every test file on disk is one pytest collects: a folder skipped by the configuration
(pytest's default ``norecursedirs`` skipped every folder named ``build``) hides its tests
silently, because they still pass when named explicitly."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs pytest as script/test does (no path: the configured testpaths), collecting only,
# and prints every file a collector reported on, skipped modules included.
COLLECT = """
import json, sys, pytest
seen = set()
class Files:
    def pytest_collectreport(self, report):
        path = report.nodeid.split("::")[0]
        if path.endswith(".py"):
            seen.add(path)
code = pytest.main(["--collect-only", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"], plugins=[Files()])
print("FILES " + json.dumps(sorted(seen)))
sys.exit(int(code))
"""


def files_on_disk():
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py"))


def collected_files():
    out = subprocess.run([sys.executable, "-c", COLLECT], cwd=ROOT, capture_output=True, text=True, timeout=240)
    line = next((line for line in out.stdout.splitlines() if line.startswith("FILES ")), None)
    assert out.returncode == 0 and line, out.stdout[-4000:] + out.stderr[-4000:]
    return json.loads(line[len("FILES "):])


def test_every_test_file_on_disk_is_collected_by_the_default_run():
    on_disk = files_on_disk()
    assert "tests/build/test_build.py" in on_disk  # the folder pytest's defaults skip
    missing = sorted(set(on_disk) - set(collected_files()))
    assert missing == [], f"test files pytest's configuration does not collect: {missing}"
