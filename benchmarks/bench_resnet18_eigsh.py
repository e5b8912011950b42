"""``eigsh`` top-5 at the defaults against ARPACK on one 1.1·10⁷-parameter Hessian.

The Hessian of the ResNet-18-shaped CNN of ``bench_krylov_overhead`` (float32, torch on one
thread, 4 synthetic 16×16 images), the same operator for both: ``es.eigsh(H, 5)`` as a user
writes it, and SciPy's ARPACK (``scipy.sparse.linalg.eigsh``, ``tol=1e-3``, the setting that
matched 1e-3 relative accuracy in the peer comparison) on ``H``'s products. Seconds, products
and eigenvalues of each, in interleaved rounds (eigenscope, ARPACK, eigenscope, ...); the
ratio is the median of the rounds' ratios. Run
``python -m benchmarks.bench_resnet18_eigsh [--repeats N]``; figures go to
``benchmarks/results/resnet18_eigsh.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "resnet18_eigsh.json"


def _eigenscope(hessian: Any) -> dict[str, Any]:
    import eigenscope as es

    start = time.perf_counter()
    r = es.eigsh(hessian, 5, which="LA", seed=0)
    return {
        "seconds": time.perf_counter() - start,
        "products": int(r.num_matvecs),
        "verification_products": int(r.verification_matvecs),
        "restarts": int(r.num_restarts),
        "method": r.method,
        "eigenvalues": sorted(map(float, r.eigenvalues), reverse=True),
        "converged": bool(np.all(r.converged)),
    }


def _arpack(hessian: Any) -> dict[str, Any]:
    import scipy.sparse.linalg as sla
    import torch

    n = hessian.shape[0]
    count = [0]

    def matvec(v: np.ndarray) -> np.ndarray:
        count[0] += 1
        return hessian.matvec(torch.from_numpy(np.asarray(v, dtype=np.float32))).numpy()

    start = time.perf_counter()
    arpack = sla.LinearOperator((n, n), matvec=matvec, dtype=np.float32)
    values = sla.eigsh(arpack, k=5, which="LA", tol=1e-3, v0=np.ones(n, np.float32))[0]
    return {
        "seconds": time.perf_counter() - start,
        "products": count[0],
        "eigenvalues": sorted(map(float, values), reverse=True),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Time both solvers on the same operator, interleaved; write and return the results."""
    import torch

    from benchmarks.bench_krylov_overhead import resnet_hessian

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds (eigenscope, ARPACK)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    hessian = resnet_hessian().op
    out: dict[str, Any] = {
        "benchmark": "resnet18_eigsh",
        "command": "python -m benchmarks.bench_resnet18_eigsh"
        + (f" --repeats {args.repeats}" if args.repeats != 2 else ""),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_average_at_start": list(os.getloadavg()),
        "num_params": hessian.shape[0],
        "rounds": [],
    }
    for _ in range(args.repeats):
        mine, theirs = _eigenscope(hessian), _arpack(hessian)
        out["rounds"].append({"eigenscope": mine, "arpack": theirs, "ratio": mine["seconds"] / theirs["seconds"]})
    out["eigenscope"], out["arpack"] = out["rounds"][-1]["eigenscope"], out["rounds"][-1]["arpack"]
    ratios = [r["ratio"] for r in out["rounds"]]
    out["eigenscope_over_arpack"] = float(np.median(ratios))
    out["ratio_range"] = [min(ratios), max(ratios)]
    out["load_average_at_end"] = list(os.getloadavg())
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "rounds"}, indent=1))
    return out


if __name__ == "__main__":
    main()
