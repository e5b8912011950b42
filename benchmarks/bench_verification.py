"""The products ``eigsh`` spends verifying its answer, beside the products of the main run and ARPACK's.

``eigsh`` marks pairs converged only after a fresh-start Lanczos sequence on the complement of
the pairs found certifies that no more extreme or repeated eigenvalue was missed (see
``docs/algorithms/eigsh.md``). This script reports, per task, the products of the main run,
of the verification (``result.verification_matvecs``) and of ARPACK (``scipy.sparse.linalg.eigsh``,
which does not verify) at the same tolerance, and the largest error against the exact eigenvalues:

- float64 matrices with known spectra (``tol = √ε``): the network-like spectrum of
  ``bench_algorithms.py`` (n = 1500), ten outliers above a bulk (n = 1000), a cubic spectrum
  (n = 400) and a uniform one (n = 300);
- the Hessians of the zoo workloads W1–W3 (float32, ``tol = 1e-3``, the top-k task's accuracy),
  without ``--quick``; the error column compares with the cached float64 references in
  ``benchmarks/results/reference_W*_default.json`` where they hold the eigenvalues (W2, W3).

Products are counts, not times: they do not depend on the machine's load.

Run: ``python -m benchmarks.bench_verification [--quick]`` (writes
``benchmarks/results/verification.json``; ``--quick`` runs the matrices only and writes nothing).
"""

from __future__ import annotations

import argparse
import datetime
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla

import eigenscope as es
from eigenscope.testing import orthogonal_matrix

from ._common import cpu_model, versions
from .bench_algorithms import network_like_spectrum

RESULTS = Path(__file__).resolve().parent / "results" / "verification.json"
REFERENCES = Path(__file__).resolve().parent / "results"


def _spectra() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "network-like (1500)": network_like_spectrum(1500, 0),
        "10 outliers + bulk (1000)": np.concatenate([rng.uniform(0, 1, 990) ** 2, np.geomspace(30, 3, 10)]),
        "cubic (400)": np.linspace(-1, 1.3, 400) ** 3 * 10,
        "uniform (300)": np.linspace(0, 1, 300),
    }


def _expected(lam: np.ndarray, k: int, which: str) -> np.ndarray:
    s = np.sort(lam)
    return s[::-1][:k] if which == "LA" else s[:k]


def _arpack_products(a: np.ndarray, k: int, which: str, tol: float) -> int:
    count = [0]

    def mv(x: np.ndarray) -> np.ndarray:
        count[0] += 1
        return a @ x

    spla.eigsh(spla.LinearOperator(a.shape, matvec=mv, dtype=np.float64), k, which=which, tol=tol)
    return count[0]


def matrices() -> list[dict[str, Any]]:
    """Main-run, verification and ARPACK products on float64 matrices with known spectra."""
    rows = []
    tol = float(np.sqrt(np.finfo(np.float64).eps))
    for name, lam in _spectra().items():
        q = orthogonal_matrix(lam.size, 0)
        a = (q * lam) @ q.T
        a = (a + a.T) / 2
        for k, which in [(1, "LA"), (5, "LA"), (20, "LA"), (1, "SA")]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", es.ConvergenceWarning)
                r = es.eigsh(a, k, which=which, seed=0, return_eigenvectors=False)
            error = float(np.max(np.abs(np.sort(r.eigenvalues) - np.sort(_expected(lam, k, which)))))
            try:
                arpack = _arpack_products(a, k, which, tol)
            except spla.ArpackNoConvergence:
                arpack = None
            rows.append(
                {
                    "operator": name,
                    "k": k,
                    "which": which,
                    "tol": tol,
                    "main": r.num_matvecs - r.verification_matvecs,
                    "verification": r.verification_matvecs,
                    "converged": bool(r.converged.all()),
                    "max_error": error,
                    "arpack": arpack,
                }
            )
    return rows


def workloads(names: list[str]) -> list[dict[str, Any]]:
    """The same on the zoo workloads' Hessians (float32, tol = 1e-3)."""
    import torch

    from eigenscope.adapters import torch as est
    from eigenscope.zoo import workload

    rows = []
    for name in names:
        w = workload(name)
        h = est.hessian(w.model, w.loss_fn, w.batches)
        reference = json.loads((REFERENCES / f"reference_{name}_default.json").read_text())
        tasks = [(5, "LA")] if name == "W1" else [(5, "LA"), (1, "SA")]
        for k, which in tasks:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", es.ConvergenceWarning)
                r = es.eigsh(h, k, which=which, tol=1e-3, seed=0, return_eigenvectors=False)
            cached = reference.get("top" if which == "LA" else "smallest")
            error = None  # W1's cached reference holds the density only
            if cached is not None:
                part = np.asarray(cached["eigenvalues"][:k])
                error = float(np.max(np.abs(np.sort(r.eigenvalues) - np.sort(part)) / np.abs(part)))
            rows.append(
                {
                    "operator": f"{name} Hessian ({h.shape[0]})",
                    "k": k,
                    "which": which,
                    "tol": 1e-3,
                    "main": r.num_matvecs - r.verification_matvecs,
                    "verification": r.verification_matvecs,
                    "converged": bool(r.converged.all()),
                    "max_rel_error": error,
                    "arpack": None,
                }
            )
            print(f"  {rows[-1]}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the matrices only; does not write the results file")
    parser.add_argument("--workloads", nargs="*", default=["W3", "W2", "W1"])
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = matrices()
    if not args.quick:
        rows += workloads(args.workloads)
    print(f"{'operator':<32} {'k':>3} {'which':>5} {'main':>6} {'verif.':>7} {'ratio':>6} {'ARPACK':>7} {'conv.':>6}")
    for row in rows:
        ratio = row["verification"] / max(row["main"], 1)
        arpack = "-" if row["arpack"] is None else str(row["arpack"])
        print(
            f"{row['operator']:<32} {row['k']:>3} {row['which']:>5} {row['main']:>6} {row['verification']:>7} "
            f"{ratio:>6.2f} {arpack:>7} {row['converged']!s:>6}"
        )
    result = {
        "command": "python -m benchmarks.bench_verification" + (" --quick" if args.quick else ""),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "versions": versions("numpy", "scipy", "torch"),
        "rows": rows,
    }
    output = args.output or (None if args.quick else RESULTS)
    if output is not None:
        output.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
