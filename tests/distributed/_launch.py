"""Start the ranks of a distributed test as separate processes and collect their results."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

WORKER = Path(__file__).resolve().parent / "_worker.py"


def require_gloo() -> None:
    """Skip, with the reason, where torch.distributed or its gloo backend is missing."""
    torch = pytest.importorskip("torch")
    dist = torch.distributed
    if not dist.is_available():
        pytest.skip("torch.distributed is not available in this torch build")
    if not dist.is_gloo_available():
        pytest.skip("torch.distributed has no gloo backend in this torch build")


def launch(directory: Path, *, world_size: int = 2, timeout: float = 90) -> list[dict[str, Any]]:
    """Run ``_worker.py`` as ``world_size`` processes; return each rank's result.

    Fails the test (after killing the ranks) if they do not all finish within ``timeout``
    seconds: a hang is a failure.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    logs = [directory / f"rank{r}.log" for r in range(world_size)]
    procs = []
    for rank in range(world_size):
        with logs[rank].open("w") as log:
            cmd = [sys.executable, str(WORKER), str(rank), str(world_size), str(directory)]
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))
    deadline = time.monotonic() + timeout
    try:
        for proc in procs:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
            proc.wait()
        text = "\n".join(log.read_text() for log in logs)
        pytest.fail(f"the ranks did not finish within {timeout} s (a hang):\n{text}")
    results = []
    for rank in range(world_size):
        path = directory / f"rank{rank}.pkl"
        if not path.exists():
            pytest.fail(f"rank {rank} left no result:\n{logs[rank].read_text()}")
        result = pickle.loads(path.read_bytes())
        if "error" in result:
            pytest.fail(f"rank {rank} raised:\n{result['error']}")
        results.append(result)
    return results
