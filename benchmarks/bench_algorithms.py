"""Where the time goes in eigenscope's algorithms on an operator with n = 10⁶.

The operator has a known, network-like spectrum (a bulk near zero, a negative
tail and thirty positive outliers) rotated by a product of Householder
reflections, so a product costs a few passes over n numbers — about what a
Hessian-vector product of a small network costs on this CPU — and every
answer can be checked against the exact eigenvalues.

For each algorithm: products used, wall time, the time inside products and the
share spent outside them (re-orthogonalization, host transfers, the small
eigenproblems), and the error against the truth. ARPACK (scipy) runs on the
same operator for the matvec comparison.

Run: ``python -m benchmarks.bench_algorithms [--quick] [--backend numpy|torch]``
(writes ``benchmarks/results/algorithms.json``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import scipy.sparse.linalg as spla

import eigenscope as es
from eigenscope import backends
from eigenscope.linop import LinearOperator

RESULTS = Path(__file__).parent / "results" / "algorithms.json"


def network_like_spectrum(n: int, seed: int = 0) -> np.ndarray:
    """A bulk ~ U(0,1)⁴ near zero, a 0.1 % negative tail in [−2, 0], 30 outliers from 2 to 50."""
    rng = np.random.default_rng(seed)
    outliers = np.geomspace(50.0, 2.0, 30)
    negative = -rng.uniform(0, 2, n // 1000)
    bulk = rng.uniform(0, 1, n - outliers.size - negative.size) ** 4
    return np.concatenate([outliers, negative, bulk])


class HouseholderOperator(LinearOperator):
    """``R diag(λ) Rᵀ`` with R a product of Householder reflections: known spectrum, O(n b) products."""

    def __init__(self, lam: Any, reflectors: Any, *, xp: Any) -> None:
        super().__init__(
            shape=(lam.shape[0], lam.shape[0]),
            dtype=lam.dtype,
            device=backends.device(lam),
            xp=xp,
            symmetric=True,
        )
        self.lam = lam
        self.reflectors = reflectors  # (n, r) unit columns

    def _reflect(self, x: Any, order: range) -> Any:
        for i in order:
            u = self.reflectors[:, i : i + 1]
            x = x - 2.0 * u @ (u.T @ x)
        return x

    def _matmat(self, x: Any) -> Any:
        r = self.reflectors.shape[1]
        y = self._reflect(x, range(r - 1, -1, -1))  # Rᵀ x
        return self._reflect(self.lam[:, None] * y, range(r))  # R diag(λ) Rᵀ x


class TimedOperator(LinearOperator):
    """Counts products and the seconds spent inside them."""

    def __init__(self, op: LinearOperator) -> None:
        super().__init__(shape=op.shape, dtype=op.dtype, device=op.device, xp=op.xp, symmetric=True)
        self.op = op
        self.seconds = 0.0
        self.columns = 0

    def _matmat(self, x: Any) -> Any:
        start = time.perf_counter()
        y = self.op._matmat(x)
        self.seconds += time.perf_counter() - start
        self.columns += x.shape[1]
        return y

    def reset(self) -> None:
        self.seconds, self.columns = 0.0, 0


def build_operator(n: int, backend: str) -> tuple[HouseholderOperator, np.ndarray]:
    lam = network_like_spectrum(n)
    rng = np.random.default_rng(1)
    u = rng.standard_normal((n, 4))
    u /= np.linalg.norm(u, axis=0)
    if backend == "torch":
        import torch

        xp = backends.resolve_namespace(torch)
        dtype, dev = torch.float32, torch.device("cpu")
    else:
        xp = backends.resolve_namespace(np)
        dtype, dev = np.float64, "cpu"
    op = HouseholderOperator(
        backends.from_numpy(lam, xp=xp, dtype=dtype, device=dev),
        backends.from_numpy(u, xp=xp, dtype=dtype, device=dev),
        xp=xp,
    )
    return op, np.sort(lam)


def run_task(name: str, timed: TimedOperator, fn: Any, error: Any) -> dict[str, Any]:
    timed.reset()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", es.ConvergenceWarning)
        result = fn()
    wall = time.perf_counter() - start
    row = {
        "task": name,
        "matvecs": timed.columns,
        "wall_s": wall,
        "in_products_s": timed.seconds,
        "outside_share": 1.0 - timed.seconds / wall,
        "per_product_ms": 1e3 * timed.seconds / max(timed.columns, 1),
        "error": float(error(result)),
    }
    print(
        f"{name:<34} {row['matvecs']:>7} {wall:>8.2f} {row['per_product_ms']:>9.2f} "
        f"{100 * row['outside_share']:>8.1f}% {row['error']:>10.2e}",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 10⁵ and fewer tasks (a smoke run)")
    parser.add_argument("--backend", choices=["numpy", "torch"], default="numpy")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    n = 100_000 if args.quick else 1_000_000
    op, lam = build_operator(n, args.backend)
    timed = TimedOperator(op)
    eps = backends.finfo_eps(op.xp, op.dtype)
    tol = float(np.sqrt(eps))
    top = lam[::-1]

    def top_error(k: int):
        return lambda r: np.max(np.abs(np.sort(r.eigenvalues)[::-1] - top[:k]) / np.abs(top[:k]))

    print(f"n = {n}, backend {args.backend}, dtype {backends.dtype_name(op.dtype)}, tol {tol:.1e}")
    print(f"{'task':<34} {'matvecs':>7} {'wall s':>8} {'ms/prod':>9} {'outside':>9} {'error':>10}")
    rows = []
    for k in (1, 5, 20):
        rows.append(run_task(f"eigsh LA k={k} (lanczos)", timed, lambda k=k: es.eigsh(timed, k, seed=0), top_error(k)))
    rows.append(
        run_task("eigsh LA k=5 (block, b=4)", timed, lambda: es.eigsh(timed, 5, method="block", seed=0), top_error(5))
    )
    rows.append(
        run_task(
            "eigsh SA k=1 (lanczos)",
            timed,
            lambda: es.eigsh(timed, 1, which="SA", seed=0),
            lambda r: abs(r.eigenvalues[0] - lam[0]) / abs(lam[0]),
        )
    )
    if not args.quick:
        rows.append(
            run_task(
                "eigsh LA k=5 (power, PyHessian's)",
                timed,
                lambda: es.eigsh(timed, 5, method="power", seed=0, max_matvecs=600),
                top_error(5),
            )
        )
    scipy_view = timed.to_scipy()
    rows.append(
        run_task(
            "ARPACK k=5 (scipy eigsh)",
            timed,
            lambda: es.EigshResult(
                np.sort(spla.eigsh(scipy_view, 5, which="LA", tol=tol, return_eigenvectors=False))[::-1],
                None,
                np.zeros(5),
                np.ones(5, dtype=bool),
                0,
                "arpack",
                0,
                "LA",
            ),
            top_error(5),
        )
    )
    exact_trace = float(lam.sum())
    for method in ("hutchinson", "hutch++", "xtrace"):
        rows.append(
            run_task(
                f"trace {method} (100 products)",
                timed,
                lambda method=method: es.trace(timed, 100, method=method, seed=0),
                lambda r: abs(r.estimate - exact_trace) / abs(exact_trace),
            )
        )
    for probes in (1, 4):
        rows.append(
            run_task(
                f"spectral_density m=100, {probes} probe(s)",
                timed,
                lambda probes=probes: es.spectral_density(timed, 100, probes, seed=0),
                lambda r: abs(r.trace() - exact_trace) / abs(exact_trace),
            )
        )
    record = {
        "command": "python -m benchmarks.bench_algorithms"
        + (" --quick" if args.quick else "")
        + (f" --backend {args.backend}" if args.backend != "numpy" else ""),
        "n": n,
        "backend": args.backend,
        "dtype": backends.dtype_name(op.dtype),
        "tol": tol,
        "error_is": "max relative eigenvalue error (eigsh), relative trace error (trace, density)",
        "rows": rows,
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__},
        "machine": {"processor": platform.processor() or platform.machine(), "system": platform.system()},
        "date": time.strftime("%Y-%m-%d"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
