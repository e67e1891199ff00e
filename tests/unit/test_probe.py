"""The engine looks at the host instead of assuming: cgroup layout, runtime, facts."""

import os
import shutil
import subprocess
import sys

import pytest

from engine.errors import RuntimeUnavailable
from engine.host import facts, memory_bytes, oci_architecture
from engine.runtime import advisories
from engine.runtime.advisories import missing, parse_version
from engine.runtime.probe import candidates, cgroup_layout, choose_runtime, parse_version_output

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
V1 = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
"""


@pytest.mark.parametrize("text, layout", [(HYBRID, "hybrid"), (V2, "v2"), (V1, "v1"), ("", "none")])
def test_cgroup_layout_is_read_from_mountinfo(text, layout):
    assert cgroup_layout(text) == layout


def test_crun_is_never_chosen_on_a_hybrid_host():
    assert candidates("hybrid") == ["runc"]
    assert candidates("v2")[0] == "crun"


def test_runtime_choice_can_be_forced_and_fails_clearly(monkeypatch):
    monkeypatch.setenv("BERTH_RUNTIME", "no-such-runtime")
    with pytest.raises(RuntimeUnavailable, match="no-such-runtime"):
        choose_runtime()


def test_memory_and_architecture_are_read_as_oci_names():
    assert memory_bytes("MemTotal:       1024 kB\nMemFree: 1 kB\n") == 1024 * 1024
    assert oci_architecture("x86_64") == "amd64"
    assert oci_architecture("aarch64") == "arm64"


def test_facts_of_this_host_name_a_runtime_that_answers():
    # this suite runs where runc is installed (script/test installs it): no runtime is a failure
    f = facts("probe-test")
    assert f.name == "probe-test"
    assert f.cpus >= 1 and f.memory_bytes > 0
    assert f.cgroup_layout == cgroup_layout()
    assert f.runtime_error == ""
    assert f.runtime in ("runc", "crun")
    assert parse_version(f.runtime_version) is not None, f.runtime_version
    assert f.runtime_spec and os.access(f.runtime_path, os.X_OK)


def broken_runtime(directory, name="runc"):
    """A real runc binary cut short: present, executable, and unable to start."""
    real = shutil.which("runc") or "/usr/sbin/runc"
    path = directory / name
    path.write_bytes(open(real, "rb").read(4096))
    path.chmod(0o755)
    return path


def test_a_broken_runtime_is_reported_as_an_error_not_a_blank(monkeypatch, tmp_path):
    broken_runtime(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setenv("BERTH_RUNTIME", "runc")
    with pytest.raises(RuntimeUnavailable, match=f"{tmp_path}/runc does not run"):
        choose_runtime()
    f = facts("broken")
    assert f.runtime == "" and f.runtime_version == ""
    assert f"{tmp_path}/runc" in f.runtime_error and "does not run" in f.runtime_error


def test_a_runtime_that_fails_its_version_is_reported(monkeypatch, tmp_path):
    # a real program that exits non-zero with no version: /bin/false under the runtime's name
    (tmp_path / "runc").symlink_to(shutil.which("false"))
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setenv("BERTH_RUNTIME", "runc")
    assert "does not answer --version (exit 1" in facts("broken").runtime_error


def test_info_exits_non_zero_and_says_why_when_no_runtime_works(tmp_path):
    broken_runtime(tmp_path)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "BERTH_RUNTIME": "runc"}
    out = subprocess.run([sys.executable, "-m", "engine", "info"], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 1
    assert f"ERROR: no working OCI runtime: the runtime {tmp_path}/runc does not run" in out.stderr
    assert "Runtime: \n" in out.stdout


RUNC_DEBIAN = """runc version 1.1.5+ds1
commit: 1.1.5+ds1-1+deb12u1
spec: 1.0.2-dev
go: go1.19.8
libseccomp: 2.5.4
"""
CRUN = """crun version 1.8.1
commit: f8a096be060b22ccd3d5f3ebe44108517fbf6c30
rundir: /run/crun
spec: 1.0.0
+SYSTEMD +SELINUX +APPARMOR +CAP +SECCOMP +EBPF +YAJL
"""


def test_version_output_is_parsed_into_version_commit_and_spec():
    assert parse_version_output(RUNC_DEBIAN) == {"version": "1.1.5+ds1", "commit": "1.1.5+ds1-1+deb12u1",
                                                 "spec": "1.0.2-dev"}
    assert parse_version_output(CRUN)["version"] == "1.8.1"
    assert parse_version_output(CRUN)["spec"] == "1.0.0"
    assert parse_version_output("")["version"] == ""
    assert parse_version_output("Usage: runc [options]\n")["version"] == ""


@pytest.mark.parametrize("text, parsed", [
    ("1.1.5+ds1", (1, 1, 5, 1, 0)), ("1.0.0-rc6", (1, 0, 0, 0, 6)), ("1.0.0-rc92", (1, 0, 0, 0, 92)),
    ("1.4.0-rc.3", (1, 4, 0, 0, 3)), ("v1.3.3", (1, 3, 3, 1, 0)), ("1.2", (1, 2, 0, 1, 0)), ("unknown", None),
])
def test_runtime_versions_parse_with_release_candidates_before_their_release(text, parsed):
    assert parse_version(text) == parsed


NOV_2025 = ["CVE-2025-31133", "CVE-2025-52565", "CVE-2025-52881"]


@pytest.mark.parametrize("version, lacking", [
    ("1.0.0-rc6", ["CVE-2019-5736", "CVE-2024-21626", *NOV_2025]),
    ("1.0.0-rc7", ["CVE-2024-21626", *NOV_2025]),
    ("1.1.11", ["CVE-2024-21626", *NOV_2025]),
    ("1.1.12", NOV_2025), ("1.1.15", NOV_2025), ("1.2.7", NOV_2025), ("1.3.2", NOV_2025),
    ("1.4.0-rc.2", NOV_2025),
    ("1.2.8", []), ("1.2.9", []), ("1.3.3", []), ("1.4.0-rc.3", []), ("1.4.0", []), ("1.5.1", []),
])
def test_runc_versions_are_checked_against_the_fixed_release_of_their_branch(version, lacking):
    assert [a.cve for a in missing("runc", version)] == lacking


def test_warnings_say_honestly_what_a_distribution_backported():
    changelog = "runc (1.1.5+ds1-1+deb12u1) bookworm-security; urgency=high\n  * CVE-2024-21626: leaked fds\n"
    said = advisories.warnings("runc", "1.1.5+ds1", "1.1.5+ds1-1+deb12u1", changelog=changelog)
    assert len(said) == 4
    assert "CVE-2024-21626" in said[0] and "backported" in said[0] and "not verified" in said[0]
    for cve, line in zip(NOV_2025, said[1:]):
        assert cve in line and "lacks the fix" in line and "does not name it" in line
    assert advisories.warnings("runc", "1.3.3") == []
    assert advisories.warnings("crun", "1.8.1") == []  # no claim about a runtime without a table


def test_the_real_runtime_is_checked_against_its_real_package():
    runc = shutil.which("runc") or "/usr/sbin/runc"
    v = parse_version_output(subprocess.run([runc, "--version"], capture_output=True, text=True).stdout)
    said = advisories.warnings("runc", v["version"], v["commit"], runc)
    lacking = missing("runc", v["version"])
    assert len(said) == len(lacking)
    changelog = advisories.package_changelog(runc)
    for a, line in zip(lacking, said):
        assert a.cve in line
        if changelog is not None and a.cve in changelog:
            assert "backported" in line
        else:
            assert "lacks the fix" in line
