"""The README's example runs against the real server and delivers every row."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "breast_cancer.py"


def test_breast_cancer_example(server, model_name, tmp_path):
    env = dict(os.environ, MODELWATCH_URL=server.url, MODELWATCH_MODEL=model_name,
               MODELWATCH_SPOOL_DIR=str(tmp_path / "spool"))
    r = subprocess.run([sys.executable, str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "delivered: True" in r.stdout, r.stdout + r.stderr
    info = server.model(model_name)
    assert info["predictions"] == 171 and info["labelled"] == 171
