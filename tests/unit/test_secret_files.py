"""Files with secrets are created 0600 whatever the umask."""

import os
import stat
import subprocess
import sys


def test_the_generated_secret_key_is_0600_even_with_umask_0(tmp_path):
    code = "import os; os.umask(0); from webui import config; print(config.secret_key())"
    env = {**os.environ, "BERTH_VAR": str(tmp_path)}
    env.pop("SECRET_KEY", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.returncode == 0, out.stderr
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().strip() == out.stdout.strip()
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no temporary left behind
