"""``eigsh`` top-5 at the defaults against ARPACK on one 1.1·10⁷-parameter Hessian.

The Hessian of the ResNet-18-shaped CNN of ``bench_krylov_overhead`` (float32, torch on one
thread, 4 synthetic 16×16 images), the same operator for both: ``es.eigsh(H, 5)`` as a user
writes it, and SciPy's ARPACK (``scipy.sparse.linalg.eigsh``, ``tol=1e-3``, the setting that
matched 1e-3 relative accuracy in the peer comparison) on ``H``'s products. Seconds, products
and eigenvalues of each, run one after the other in this order. Run
``python -m benchmarks.bench_resnet18_eigsh``; figures go to
``benchmarks/results/resnet18_eigsh.json``.
"""

from __future__ import annotations

import datetime
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "resnet18_eigsh.json"


def main() -> dict[str, Any]:
    """Time both solvers on the same operator; write and return the results."""
    import scipy.sparse.linalg as sla
    import torch

    import eigenscope as es
    from benchmarks.bench_krylov_overhead import resnet_hessian

    torch.set_num_threads(1)
    hessian = resnet_hessian().op
    n = hessian.shape[0]
    out: dict[str, Any] = {
        "benchmark": "resnet18_eigsh",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_average_at_start": list(os.getloadavg()),
        "num_params": n,
    }
    start = time.perf_counter()
    r = es.eigsh(hessian, 5, which="LA", seed=0)
    out["eigenscope"] = {
        "seconds": time.perf_counter() - start,
        "products": int(r.num_matvecs),
        "verification_products": int(r.verification_matvecs),
        "restarts": int(r.num_restarts),
        "method": r.method,
        "eigenvalues": sorted(map(float, r.eigenvalues), reverse=True),
        "converged": bool(np.all(r.converged)),
    }
    count = [0]

    def matvec(v: np.ndarray) -> np.ndarray:
        count[0] += 1
        return hessian.matvec(torch.from_numpy(np.asarray(v, dtype=np.float32))).numpy()

    start = time.perf_counter()
    arpack = sla.LinearOperator((n, n), matvec=matvec, dtype=np.float32)
    values = sla.eigsh(arpack, k=5, which="LA", tol=1e-3, v0=np.ones(n, np.float32))[0]
    out["arpack"] = {
        "seconds": time.perf_counter() - start,
        "products": count[0],
        "eigenvalues": sorted(map(float, values), reverse=True),
    }
    out["eigenscope_over_arpack"] = out["eigenscope"]["seconds"] / out["arpack"]["seconds"]
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
