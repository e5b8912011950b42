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
DENSITY_STEPS = 300  # per probe; a workload's plan may set fewer ("reference_density")
DENSITY_PROBES = 2


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


PARTS = ("top", "smallest", "trace", "density")
NEEDS = {
    "top1": ("top",),
    "top5": ("top",),
    "top20": ("top",),
    "smallest": ("smallest",),
    "trace": ("trace",),
    "density": ("density",),
}


def parts_for(tasks: Any) -> tuple[str, ...]:
    """The reference parts the given tasks compare against."""
    wanted = {p for t in tasks for p in NEEDS.get(t, ())}
    return tuple(p for p in PARTS if p in wanted)


def load_or_compute(
    setup: Setup,
    directory: Path,
    log: Callable[[str], None] = print,
    recompute: bool = False,
    parts: Any = PARTS,
    density: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The cached reference, with any of ``parts`` it lacks computed and the file rewritten.

    A file whose fingerprint does not match the workload (the zoo changed) is discarded.
    """
    path = path_for(directory, setup)
    fp = fingerprint(setup)
    ref: dict[str, Any] = {}
    if path.exists() and not recompute:
        old = json.loads(path.read_text())
        if old.get("version") == VERSION and _same(old.get("fingerprint", {}), fp):
            ref = old
        else:
            log(f"    reference {path.name} is stale (workload or format changed): recomputing")
    missing = [p for p in parts if p not in ref]
    if not missing:
        return ref
    t0 = time.perf_counter()
    with host_blas_single_thread():
        if setup.num_params <= DENSE_MAX_N:
            ref.update(dense_reference(setup))
        else:
            ref.setdefault("method", "iterative (see each part's settings)")
            for part in missing:
                ref[part] = _density_part(setup, *(density or ())) if part == "density" else ITERATIVE[part](setup)
                log(f"    reference {part}: {ref[part]['num_matvecs']} products, {ref[part]['seconds']:.0f} s")
                _save(path, ref, fp)  # keep what is done
    ref.update({"version": VERSION, "fingerprint": fp, "date": now()})
    ref["seconds"] = ref.get("seconds", 0.0) + time.perf_counter() - t0
    _save(path, ref, fp)
    log(f"    wrote {path.name} ({time.perf_counter() - t0:.0f} s)")
    return ref


def _save(path: Path, ref: dict[str, Any], fp: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**ref, "version": VERSION, "fingerprint": fp}, indent=1) + "\n")


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


def _eigsh_part(setup: Setup, which: str, k: int) -> dict[str, Any]:
    H64 = setup.eigenscope_hessian(dtype=torch.float64)
    t0 = time.perf_counter()
    r = es.eigsh(H64, k, which=which, tol=1e-9, seed=0, return_eigenvectors=False, max_matvecs=5000)
    return {
        "eigenvalues": r.eigenvalues.tolist(),
        "residual_norms": r.residual_norms.tolist(),
        "converged": bool(r.converged.all()),
        "num_matvecs": r.num_matvecs,
        "settings": f"es.eigsh float64, k={k}, which={which!r}, tol=1e-9, method='lanczos', seed=0",
        "seconds": time.perf_counter() - t0,
    }


def _trace_part(setup: Setup) -> dict[str, Any]:
    H = setup.eigenscope_hessian()
    budget = TRACE_BUDGET[setup.size]
    t0 = time.perf_counter()
    tr = es.trace(H, budget, method="xtrace", seed=12345, block_size=10)
    return {
        "estimate": tr.estimate,
        "std_error": tr.std_error,
        "num_matvecs": tr.num_matvecs,
        "settings": f"es.trace float32, method='xtrace', {budget} products, seed=12345",
        "seconds": time.perf_counter() - t0,
    }


def _density_part(setup: Setup, steps: int = DENSITY_STEPS, probes: int = DENSITY_PROBES) -> dict[str, Any]:
    H = setup.eigenscope_hessian()
    t0 = time.perf_counter()
    d = es.spectral_density(H, num_steps=steps, num_probes=probes, seed=54321, deflate_outliers=TOP_K)
    return {
        "nodes": d.nodes.tolist(),
        "weights": d.weights.tolist(),
        "num_matvecs": d.num_matvecs,
        "exact": False,
        "settings": (
            f"es.spectral_density float32, {steps} steps, {probes} Rademacher probe(s), "
            f"top {TOP_K} deflated exactly, seed=54321"
        ),
        "seconds": time.perf_counter() - t0,
    }


ITERATIVE: dict[str, Callable[[Setup], dict[str, Any]]] = {
    "top": lambda s: _eigsh_part(s, "LA", TOP_K),
    "smallest": lambda s: _eigsh_part(s, "SA", 1),
    "trace": _trace_part,
}


# ---- the common density metric -----------------------------------------------------------
def density_frame(
    ref: dict[str, Any], num_points: int = 2001, sigma_rel: float | None = None
) -> tuple[np.ndarray, float]:
    """The common grid and kernel width every density is compared on.

    With ``sigma_rel`` the Gaussian's σ is that fraction of the reference's spectral width
    ``λ_max − λ_min`` (BENCHMARKS.md: 0.01). Without it, PyHessian's own plotting convention
    (``density_generate`` of its examples, older result files): a Gaussian of variance
    ``1e-5 · max(1, λ_max − λ_min)``. The grid is uniform over ``[λ_min, λ_max]`` widened by
    1% of the range and 3σ on each side. ``λ_min``/``λ_max`` are the extreme nodes of the
    reference density (its deflated outliers are exact eigenvalues; its long Lanczos runs pin the
    lower end), so the frame needs nothing but the density reference.
    """
    nodes = np.asarray(ref["density"]["nodes"], dtype=float)
    weights = np.asarray(ref["density"]["weights"], dtype=float)
    live = nodes[weights > 0]
    lo, hi = float(live.min()), float(live.max())
    span = hi - lo
    sigma = float(np.sqrt(1e-5 * max(1.0, span))) if sigma_rel is None else sigma_rel * span
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


_SMOOTHED_REFERENCE: dict[tuple, np.ndarray] = {}


def l1_distance(nodes: Any, weights: Any, ref: dict[str, Any], frame: tuple[np.ndarray, float] | None = None) -> float:
    """∫ |ρ − ρ_ref| dx of the smoothed densities on the common grid (0 = equal, 2 = disjoint)."""
    grid, sigma = frame or density_frame(ref)
    a = smoothed(nodes, weights, grid, sigma)
    key = (id(ref["density"]["nodes"]), sigma, float(grid[0]), float(grid[-1]), grid.size)
    if key not in _SMOOTHED_REFERENCE:
        _SMOOTHED_REFERENCE.clear()
        _SMOOTHED_REFERENCE[key] = smoothed(ref["density"]["nodes"], ref["density"]["weights"], grid, sigma)
    return float(np.trapezoid(np.abs(a - _SMOOTHED_REFERENCE[key]), grid))


def spectral_measure(nodes: Any, weights: Any) -> tuple[np.ndarray, np.ndarray]:
    """The probe-averaged spectral measure of one or several quadrature rules, as sorted atoms.

    Parameters
    ----------
    nodes, weights : array_like
        One rule (shape ``(m,)``) or one per probe: a ``(probes, m)`` array or a list of
        ``probes`` arrays of any lengths (rules of different step counts). Zero weights (padding)
        carry no mass.

    Returns
    -------
    x : ndarray, shape (N,)
        The nodes of every probe, sorted.
    mass : ndarray, shape (N,)
        Their masses: ``(1/probes) Σ_p Σ_i w_pi δ(θ_pi)`` normalised to total mass 1.
    """
    node_rows, weight_rows = _probe_rows(nodes), _probe_rows(weights)
    if len(node_rows) != len(weight_rows) or any(a.size != b.size for a, b in zip(node_rows, weight_rows, strict=True)):
        raise ValueError("nodes and weights must have the same shape, probe by probe")
    x = np.concatenate(node_rows)
    # The 1/probes factor of the average cancels in the normalisation below.
    mass = np.concatenate(weight_rows)
    total = float(mass.sum())
    if not np.isfinite(total) or total <= 0:
        raise ValueError("a spectral measure needs a positive, finite total weight")
    order = np.argsort(x, kind="stable")
    return x[order], mass[order] / total


def _probe_rows(values: Any) -> list[np.ndarray]:
    """One float64 vector per probe: the rows of a 2-D array, or the items of a ragged list."""
    try:
        arr = np.asarray(values, dtype=float)
    except ValueError:  # a ragged list of rules: one array per probe
        return [np.asarray(row, dtype=float).ravel() for row in values]
    if arr.ndim <= 1:
        return [arr.ravel()]
    return list(arr.reshape(arr.shape[0], -1))


def w1_distance(nodes: Any, weights: Any, ref_nodes: Any, ref_weights: Any, *, width: float | None = None) -> float:
    """1-Wasserstein distance between two spectral measures ÷ the reference's spectral width.

    Each measure is the probe average of its quadrature rules ``Σ_i w_i δ(θ_i)`` normalised
    to mass 1 (``spectral_measure``); atoms (deflated outliers) are ordinary nodes. On the real
    line ``W1(μ, ν) = ∫ |F_μ(x) − F_ν(x)| dx`` (Vallender 1973), and both distribution functions
    are step functions, so the integral is an exact finite sum over the merged support: no
    grid, no smoothing. The width is the reference's ``max θ − min θ`` over nodes of positive
    weight, which makes the figure comparable across workloads (0 = equal; at most 1
    while both measures lie within the reference's range).

    Parameters
    ----------
    nodes, weights : array_like
        The measure compared: shape ``(m,)``, ``(probes, m)``, or a list of per-probe arrays.
    ref_nodes, ref_weights : array_like
        The reference measure, in any of the same forms.
    width : float, optional
        The length to divide by; by default the reference's spectral width.

    Returns
    -------
    float
        ``W1(μ, μ_ref) / width``, by default ``W1(μ, μ_ref) / (max θ_ref − min θ_ref)``.
    """
    x, p = spectral_measure(nodes, weights)
    y, q = spectral_measure(ref_nodes, ref_weights)
    if width is None:
        live = y[q > 0]
        width = float(live.max() - live.min())
    if not width > 0:
        raise ValueError("W1 is divided by the spectral width, which must be positive")
    support = np.sort(np.concatenate([x, y]), kind="stable")
    # F and G on each interval [support[k], support[k + 1]): the mass of atoms ≤ support[k].
    cdf_p = np.concatenate([[0.0], np.cumsum(p)])[np.searchsorted(x, support[:-1], side="right")]
    cdf_q = np.concatenate([[0.0], np.cumsum(q)])[np.searchsorted(y, support[:-1], side="right")]
    return float(np.abs(cdf_p - cdf_q) @ np.diff(support)) / width
