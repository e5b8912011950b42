"""Reference spectra per workload: computed once, long and tight, cached as small JSON files.

What a reference holds (``benchmarks/results/reference_<W>_<size>.json``):

- ``top``: the 20 largest eigenvalues — eigenscope's thick-restart Lanczos on the float64
  Hessian (the float32 weights and data cast exactly to float64), residual tolerance 1e-9
  (eigenvalue errors ~ ‖r‖²/gap: far below the 1e-3 target);
- ``smallest``: the smallest eigenvalue, the same way (``which="SA"``);
- ``trace``: XTrace on the float32 Hessian with a large budget, with its standard error
  (the harness checks it is at most a tenth of the 1% target);
- ``density``: the stem (nodes, weights) of stochastic Lanczos quadrature with many more steps
  than the benchmarked runs and the 20 top outliers deflated exactly (atoms of mass 1/n),
  on the float32 Hessian.

Operators small enough to form (n ≤ 4000: the tiny test workloads) are formed densely in
float64 and solved exactly instead (top, smallest, trace and the full eigenvalue list).

A fingerprint of the weights and data guards the cache: when the zoo changes a workload,
the stale file is recomputed, never silently reused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import eigenscope as es

from ._timing import host_blas_single_thread, now
from ._workloads import Setup

VERSION = 1
TOP_K = 20
DENSE_MAX_N = 4000
TRACE_BUDGET = {"tiny": 0, "default": 1000, "large": 1000}
DENSITY_STEPS = {"tiny": 0, "default": 300, "large": 300}
DENSITY_PROBES = {"tiny": 0, "default": 2, "large": 2}


def fingerprint(setup: Setup) -> dict[str, Any]:
    """Numbers that change when the zoo changes the weights, the data or the batching."""
    with torch.no_grad():
        params = sum(float(p.double().sum()) for p in setup.model.parameters())
        buffers = sum(float(b.double().sum()) for b in setup.model.buffers() if b.is_floating_point())
        data = 0.0
        for x, y in setup.batches:
            for t in x.values() if isinstance(x, dict) else [x]:
                data += float(t.double().abs().sum())
            data += float(y.double().sum())
    return {
        "num_params": setup.num_params,
        "num_samples": setup.workload.num_samples,
        "batch_sizes": [int(y.shape[0]) for _, y in setup.batches],
        "param_sum": round(params, 6),
        "buffer_sum": round(buffers, 6),
        "data_sum": round(data, 3),
    }


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, float) and isinstance(y, float):
            if not np.isclose(x, y, rtol=1e-6, atol=1e-6):
                return False
        elif x != y:
            return False
    return True


def path_for(directory: Path, setup: Setup) -> Path:
    return directory / f"reference_{setup.wid}_{setup.size}.json"


def load_or_compute(
    setup: Setup, directory: Path, log: Callable[[str], None] = print, recompute: bool = False
) -> dict[str, Any]:
    """The cached reference if its fingerprint matches the workload, else a new one (written)."""
    path = path_for(directory, setup)
    fp = fingerprint(setup)
    if path.exists() and not recompute:
        ref = json.loads(path.read_text())
        if ref.get("version") == VERSION and _same(ref.get("fingerprint", {}), fp):
            return ref
        log(f"    reference {path.name} is stale (workload or format changed): recomputing")
    t0 = time.perf_counter()
    with host_blas_single_thread():
        ref = dense_reference(setup) if setup.num_params <= DENSE_MAX_N else iterative_reference(setup, log)
    ref.update({"version": VERSION, "fingerprint": fp, "date": now(), "seconds": time.perf_counter() - t0})
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ref, indent=1) + "\n")
    log(f"    wrote {path.name} ({ref['seconds']:.0f} s)")
    return ref


def dense_reference(setup: Setup) -> dict[str, Any]:
    """Exact spectrum of the float64 Hessian formed column by column (small n only)."""
    H = setup.eigenscope_hessian(dtype=torch.float64, cache_graphs=False)
    dense = H.to_dense().cpu().numpy()
    lam = np.linalg.eigvalsh((dense + dense.T) / 2)
    k = min(TOP_K, lam.size)
    return {
        "method": "dense float64 Hessian (n products), numpy eigvalsh",
        "top": {"eigenvalues": lam[::-1][:k].tolist(), "num_matvecs": H.shape[0]},
        "smallest": {"eigenvalues": lam[:1].tolist(), "num_matvecs": 0},
        "trace": {"estimate": float(np.trace(dense)), "std_error": 0.0, "num_matvecs": 0},
        "density": {
            "nodes": [lam.tolist()],
            "weights": [np.full(lam.size, 1.0 / lam.size).tolist()],
            "num_matvecs": 0,
            "exact": True,
        },
    }


def iterative_reference(setup: Setup, log: Callable[[str], None]) -> dict[str, Any]:
    out: dict[str, Any] = {"method": "iterative (see the fields)"}
    H64 = setup.eigenscope_hessian(dtype=torch.float64)
    t0 = time.perf_counter()
    top = es.eigsh(H64, TOP_K, which="LA", tol=1e-9, seed=0, return_eigenvectors=False, max_matvecs=5000)
    out["top"] = {
        "eigenvalues": top.eigenvalues.tolist(),
        "residual_norms": top.residual_norms.tolist(),
        "converged": bool(top.converged.all()),
        "num_matvecs": top.num_matvecs,
        "settings": "es.eigsh float64, which='LA', tol=1e-9, method='lanczos', seed=0",
        "seconds": time.perf_counter() - t0,
    }
    log(f"    reference top-{TOP_K}: {top.num_matvecs} products, {out['top']['seconds']:.0f} s")
    t0 = time.perf_counter()
    low = es.eigsh(H64, 1, which="SA", tol=1e-9, seed=0, return_eigenvectors=False, max_matvecs=5000)
    out["smallest"] = {
        "eigenvalues": low.eigenvalues.tolist(),
        "residual_norms": low.residual_norms.tolist(),
        "converged": bool(low.converged.all()),
        "num_matvecs": low.num_matvecs,
        "settings": "es.eigsh float64, which='SA', tol=1e-9, method='lanczos', seed=0",
        "seconds": time.perf_counter() - t0,
    }
    log(f"    reference smallest: {low.num_matvecs} products, {out['smallest']['seconds']:.0f} s")
    del H64

    H = setup.eigenscope_hessian()
    budget = TRACE_BUDGET[setup.size]
    t0 = time.perf_counter()
    tr = es.trace(H, budget, method="xtrace", seed=12345, block_size=10)
    out["trace"] = {
        "estimate": tr.estimate,
        "std_error": tr.std_error,
        "num_matvecs": tr.num_matvecs,
        "settings": f"es.trace float32, method='xtrace', {budget} products, seed=12345",
        "seconds": time.perf_counter() - t0,
    }
    log(f"    reference trace: {tr.estimate:.6g} ± {tr.std_error:.2g}, {out['trace']['seconds']:.0f} s")

    steps, probes = DENSITY_STEPS[setup.size], DENSITY_PROBES[setup.size]
    t0 = time.perf_counter()
    d = es.spectral_density(H, num_steps=steps, num_probes=probes, seed=54321, deflate_outliers=TOP_K)
    out["density"] = {
        "nodes": d.nodes.tolist(),
        "weights": d.weights.tolist(),
        "num_matvecs": d.num_matvecs,
        "exact": False,
        "settings": (
            f"es.spectral_density float32, {steps} steps, {probes} Rademacher probes, "
            f"top {TOP_K} deflated exactly, seed=54321"
        ),
        "seconds": time.perf_counter() - t0,
    }
    log(f"    reference density: {d.num_matvecs} products, {out['density']['seconds']:.0f} s")
    return out


# ---- the common density metric -----------------------------------------------------------
def density_frame(ref: dict[str, Any], num_points: int = 2001) -> tuple[np.ndarray, float]:
    """The common grid and kernel width every density is compared on.

    PyHessian's own plotting convention (``density_generate`` of its examples): a Gaussian of
    variance ``1e-5 · max(1, λ_max − λ_min)``, on a uniform grid over ``[λ_min, λ_max]``
    widened by 1% of the range on each side; ``λ_min``/``λ_max`` from the reference.
    """
    lo = float(ref["smallest"]["eigenvalues"][0])
    hi = float(ref["top"]["eigenvalues"][0])
    span = hi - lo
    sigma = float(np.sqrt(1e-5 * max(1.0, span)))
    grid = np.linspace(lo - 0.01 * span - 3 * sigma, hi + 0.01 * span + 3 * sigma, num_points)
    return grid, sigma


def smoothed(nodes: Any, weights: Any, grid: np.ndarray, sigma: float) -> np.ndarray:
    """Probe-averaged Gaussian-smoothed density of a stem measure (rows = probes)."""
    nodes = np.atleast_2d(np.asarray(nodes, dtype=float))
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    keep = weights > 0
    x, w = nodes[keep], weights[keep] / nodes.shape[0]
    out = np.zeros_like(grid)
    for start in range(0, x.size, 256):  # bounded memory: grid × 256 nodes at a time
        t = grid[:, None] - x[None, start : start + 256]
        out += np.exp(-0.5 * (t / sigma) ** 2) @ w[start : start + 256]
    return out / (sigma * np.sqrt(2 * np.pi))


def l1_distance(nodes: Any, weights: Any, ref: dict[str, Any], frame: tuple[np.ndarray, float] | None = None) -> float:
    """∫ |ρ − ρ_ref| dx of the smoothed densities on the common grid (0 = equal, 2 = disjoint)."""
    grid, sigma = frame or density_frame(ref)
    a = smoothed(nodes, weights, grid, sigma)
    b = smoothed(ref["density"]["nodes"], ref["density"]["weights"], grid, sigma)
    return float(np.trapezoid(np.abs(a - b), grid))
