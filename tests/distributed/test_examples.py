"""``examples/distributed_torchrun.py`` runs as documented: under torchrun with 2 processes
and as a plain script, with the same numbers (the JAX example runs in ``test_jax.py``)."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ._launch import require_gloo

# Several processes per test: one xdist worker runs them all, so their ranks never compete.
pytestmark = pytest.mark.xdist_group("distributed")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _run(args: list[str], **env: str) -> str:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", **env}
    proc = subprocess.run(args, env=environ, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _numbers(out: str, label: str) -> np.ndarray:
    line = next(line for line in out.splitlines() if line.startswith(label))
    return np.array([float(x) for x in re.findall(r"-?\d+\.\d+(?:e[-+]\d+)?", line.split(":", 1)[1])])


def test_torchrun_example_matches_one_process(monkeypatch, capsys):
    require_gloo()
    script = str(EXAMPLES / "distributed_torchrun.py")
    two = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", script])
    # As a plain script: here, in the test process (no process group is initialized).
    monkeypatch.setattr(sys, "argv", [script])
    runpy.run_path(script, run_name="__main__")
    one = capsys.readouterr().out
    assert one.startswith("1 process(es)") and two.startswith("2 process(es)"), two
    for label in ("top-5 eigenvalues", "trace (SLQ)", "negative mass"):
        np.testing.assert_allclose(_numbers(two, label), _numbers(one, label), rtol=1e-5, atol=1e-6)
    assert re.search(r"in (\d+) calls, \1 all-reduces", two), two  # one all-reduce per product call
