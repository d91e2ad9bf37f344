"""``python -m igm`` behaves exactly like the ``igm`` console script: same output, same exit status,
for help, a listing, a bad command and bad input. Both run as subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ENTRY = shutil.which("igm", path=str(Path(sys.executable).parent)) or shutil.which("igm")


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "100", "PYTHONHASHSEED": "0"}
    env.pop("IGM_DEBUG", None)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(ENTRY is None, reason="the igm console script is not installed in this environment")
@pytest.mark.parametrize("args", [
    ["--help"],
    ["objectives"],
    ["no-such-command"],
    ["train", "--preset", "no-such-preset"],
    ["train", "--preset", "ring-smmd", "train.no_such_key=1"],
], ids=["help", "objectives", "bad-command", "bad-preset", "bad-key"])
def test_python_m_igm_is_the_entry_point(args, tmp_path):
    script = _run([ENTRY, *args], tmp_path)
    module = _run([sys.executable, "-m", "igm", *args], tmp_path)
    assert module.returncode == script.returncode, (module, script)
    assert module.stdout == script.stdout
    assert module.stderr == script.stderr
    if args != ["--help"] and args != ["objectives"]:
        assert module.returncode != 0 and "Traceback" not in module.stderr
        assert len(module.stderr.strip().splitlines()) <= 3, module.stderr  # a short message, not a dump
    else:
        assert module.returncode == 0 and module.stdout
