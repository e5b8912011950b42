"""One rank of the distributed tests: ``python _worker.py RANK WORLD_SIZE DIR``.

Runs the agreement checks, then the failure checks.

Joins a gloo process group through a file store in ``DIR``, runs the checks and pickles
what it saw (arrays, or the type and message of each exception) to ``DIR/rank{RANK}.pkl``.
"""

from __future__ import annotations

import datetime
import os
import pickle
import sys
import time
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F

import eigenscope as es
from eigenscope import zoo
from eigenscope.adapters import torch as est

# 11 samples in batches of 4, 4, 3; rank 0 holds batches 0 and 1 (8 samples), rank 1 batch 2
# (3 samples): uneven shards.
SHARDS = {2: [[0, 1], [2]]}


def workload() -> zoo.Workload:
    return zoo.workload("transformer", "tiny", dtype=torch.float64, num_samples=11, batch_size=4)


def numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def outcome(fn: Any) -> tuple[str, str, tuple[int, ...]]:
    """``("ok", "", ())`` or the exception's type, message and (DistributedError) ranks."""
    try:
        fn()
    except Exception as exc:
        return type(exc).__name__, str(exc), tuple(getattr(exc, "ranks", ()))
    return "ok", "", ()


def agree(rank: int, world: int) -> dict[str, Any]:
    """Products, eigenpairs, trace and density on the sharded data; and the reference, one
    process on all the data, split between the ranks (rank 0: the algorithms, rank 1: the
    products) so that the two cores share it."""
    w = workload()
    mine = [w.batches[i] for i in SHARDS[world][rank]]

    def run(data: list, pg: Any, parts: tuple[str, ...]) -> dict[str, Any]:
        h = est.hessian(w.model, w.loss_fn, data, process_group=pg)
        n = h.shape[0]
        gen = torch.Generator().manual_seed(3)
        v = torch.randn(n, generator=gen, dtype=torch.float64)
        block = torch.randn(n, 3, generator=gen, dtype=torch.float64)
        res: dict[str, Any] = {"n": n, "N": h.num_samples, "world": h.world_size}
        if "products" in parts:
            res["hv"] = numpy(h @ v)
            res["hV"] = numpy(h @ block)
            res["gradient"] = numpy(h.gradient())
            res["loss"] = h.loss()
            g = est.ggn(w.model, w.loss_fn, data, process_group=pg)
            res["ggn_V"] = numpy(g @ block)
            m = est.gradient_covariance(w.model, w.loss_fn, data, centered=True, process_group=pg)
            res["cov_V"] = numpy(m @ block)
            s = est.hessian(w.model, w.loss_fn, data, reduction="sum", blocks="module", process_group=pg)
            res["sum_blocks_v"] = numpy(s @ v)
        if "algorithms" in parts:
            h.reset_counters()
            res["top5"] = es.eigsh(h, k=5, which="LA", seed=0, tol=1e-12).eigenvalues
            res["trace"] = es.trace(h, 40, method="hutch++", seed=1).estimate
            res["density_nodes"] = es.spectral_density(h, num_steps=8, num_probes=2, seed=2).nodes
            res["allreduces"] = (h.num_allreduces, h.num_calls)
        return res

    sharded = run(mine, "auto", ("products", "algorithms"))
    single = run(w.batches, None, ("algorithms",) if rank == 0 else ("products",))
    return {"sharded": sharded, "single": single}


class Flaky(nn.Module):
    """A small classifier whose forward pass raises once ``fail`` is set."""

    def __init__(self, hidden: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, hidden), nn.Tanh(), nn.Linear(hidden, 2))
        self.fail = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fail:
            raise RuntimeError("injected failure in the forward pass")
        return self.net(x)


def _data(rank: int, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(10 + rank)
    return [(torch.randn(n, 3, generator=gen, dtype=torch.float64), torch.randint(0, 2, (n,), generator=gen))]


def failures(rank: int, world: int, directory: Path) -> dict[str, Any]:
    """Every failure ends with an exception on every rank, and the group stays usable; last,
    a rank that never joins a product makes the other fail after the group's timeout."""
    quick = dist.new_group(timeout=datetime.timedelta(seconds=2))
    torch.manual_seed(0)
    model = Flaky().double()
    data = _data(rank, 5 + 2 * rank)
    out: dict[str, Any] = {}
    out["empty"] = outcome(lambda: est.hessian(model, F.cross_entropy, [] if rank == 1 else data))
    out["empty_layerwise"] = outcome(lambda: est.layerwise(model, F.cross_entropy, [] if rank == 1 else data))
    other = Flaky(hidden=5 if rank == 1 else 4).double()
    out["num_params"] = outcome(lambda: est.hessian(other, F.cross_entropy, data))
    out["kind"] = outcome(lambda: (est.hessian if rank == 0 else est.ggn)(model, F.cross_entropy, data))
    # No graph cache: every product runs the forward pass, where the failure is injected.
    h = est.hessian(model, F.cross_entropy, data, cache_graphs=False)
    v = torch.ones(h.shape[0], dtype=torch.float64)

    def failing_product() -> None:
        model.fail = rank == 1
        try:
            h @ v
        finally:
            model.fail = False

    out["product"] = outcome(failing_product)
    with torch.no_grad():
        weight = model.net[0].weight
        saved = weight[0, 0].item()
        if rank == 1:
            weight[0, 0] = float("nan")
    out["nan"] = outcome(lambda: h @ v)
    with torch.no_grad():
        weight[0, 0] = saved
    out["seed_none"] = outcome(lambda: es.eigsh(h, k=2, seed=None))
    out["after"] = numpy(h @ v)  # the group still works
    out["n"] = h.shape[0]
    # Rank 1 never joins this product (it waits for rank 0's result instead).
    h = est.hessian(model, F.cross_entropy, data, process_group=quick)
    if rank == 1:
        deadline = time.monotonic() + 60
        while not (directory / "rank0.pkl").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return out
    start = time.monotonic()
    out["timeout"] = outcome(lambda: h @ v)
    out["timeout_seconds"] = time.monotonic() - start
    return out


def main() -> None:
    rank, world, directory = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{directory / 'store'}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        # The failures come last: they leave a timed-out process group behind.
        result = {"agree": agree(rank, world), "failures": failures(rank, world, directory)}
    except Exception:
        result = {"error": traceback.format_exc()}
    tmp = directory / f"rank{rank}.tmp"
    tmp.write_bytes(pickle.dumps(result))
    tmp.rename(directory / f"rank{rank}.pkl")


if __name__ == "__main__":
    main()
