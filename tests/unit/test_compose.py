"""docker-compose.yml describes the production shape and Debian's docker-compose accepts it."""

import subprocess
from pathlib import Path

from tests.conftest import need_binary

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_is_accepted_by_docker_compose_config(tmp_path):
    binary = need_binary("docker-compose", "docker-compose")
    out = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    assert "worker:" in out.stdout and "privileged: true" in out.stdout


def test_compose_has_the_production_services_with_a_privileged_worker():
    import yaml
    config = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = config["services"]
    assert {"web", "recorder", "worker", "redis", "postgres"} <= set(services)
    assert services["worker"].get("privileged") is True
    for name in ("web", "recorder"):
        env = services[name]["environment"]
        assert "DATABASE_URL" in env and env["DATABASE_URL"].startswith("postgres")
        assert "BERTH_BROKER_URL" in env
    # A host gets the broker's address and nothing of the database.
    worker_env = services["worker"]["environment"]
    assert "BERTH_BROKER_URL" in worker_env and "BERTH_HOST_NAME" in worker_env
    assert not any("DATABASE" in key or "POSTGRES" in key for key in worker_env)
