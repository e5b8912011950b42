"""The Krylov methods' time outside the operator's products at n = 10⁶ and 10⁷, beside ARPACK's.

For large n the bookkeeping of a Krylov method (Gram–Schmidt against the stored basis,
norms, restarts, the verification of ``eigsh``) costs passes over n-length vectors; this
script measures it per step, where it matters:

- a diagonal operator (float32, torch CPU and NumPy) at n = 10⁶ and 10⁷: a product costs
  one pass over n numbers, so almost all of the time is bookkeeping;
- the Hessian of a ResNet-shaped CNN with ≈ 1.1·10⁷ parameters (torch only, 1 thread, a
  small synthetic batch), where one product costs a fraction of a second.

For ``es.eigsh(k=5)``, ``es.lanczos``, ``es.spectral_density`` (its default
``reorth="full"``, and ``reorth="partial"``) and scipy's ARPACK
(``scipy.sparse.linalg.eigsh`` on a LinearOperator of the same operator, same k and tol) it
reports the seconds in all, the products, the seconds inside them and the seconds outside
them per product ("per step"), medians over ``--repeats`` interleaved runs (the machine is
shared). Set ``OMP_WAIT_POLICY=PASSIVE`` when other processes share the cores.

Run: ``python -m benchmarks.bench_krylov_overhead [--quick] [--label after]`` (merges its
rows under ``label`` into ``benchmarks/results/krylov_overhead.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla

import eigenscope as es
from eigenscope import backends
from eigenscope.linop import LinearOperator

from ._common import cpu_model, summary, trim, versions

RESULTS = Path(__file__).resolve().parent / "results" / "krylov_overhead.json"


class TimedDiagonal(LinearOperator):
    """``diag(d)`` that counts its products and the seconds spent in them."""

    def __init__(self, d: Any, xp: Any) -> None:
        n = int(d.shape[0])
        super().__init__(shape=(n, n), dtype=d.dtype, device=backends.device(d), xp=xp, symmetric=True)
        self.d = d
        self.seconds, self.columns = 0.0, 0

    def _matmat(self, x: Any) -> Any:
        start = time.perf_counter()
        y = self.d[:, None] * x
        self.seconds += time.perf_counter() - start
        self.columns += int(x.shape[1])
        return y


class TimedOperator(LinearOperator):
    """Any symmetric operator, with its products counted and timed."""

    def __init__(self, op: LinearOperator) -> None:
        super().__init__(shape=op.shape, dtype=op.dtype, device=op.device, xp=op.xp, symmetric=True)
        self.op = op
        self.seconds, self.columns = 0.0, 0

    def _matmat(self, x: Any) -> Any:
        start = time.perf_counter()
        y = self.op.matmat(x)
        self.seconds += time.perf_counter() - start
        self.columns += int(x.shape[1])
        return y


def diagonal(n: int, backend: str) -> TimedDiagonal:
    """Thirty outliers from 50 down to 2 above a bulk ``U(0, 1)⁴``: a network Hessian's shape."""
    rng = np.random.default_rng(0)
    lam = np.concatenate([np.geomspace(50.0, 2.0, 30), rng.uniform(0, 1, n - 30) ** 4]).astype(np.float32)
    if backend == "torch":
        import torch

        return TimedDiagonal(torch.from_numpy(lam), backends.resolve_namespace(torch))
    return TimedDiagonal(lam, backends.resolve_namespace(np))


def resnet_hessian(batch: int = 4) -> TimedOperator:
    """The Hessian of a ResNet-18-shaped CNN (≈ 1.1·10⁷ parameters) on a synthetic 8×8 batch."""
    import torch
    from torch import nn

    from eigenscope.adapters import torch as est

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.skip = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else nn.Identity()

        def forward(self, x: Any) -> Any:
            return torch.tanh(self.conv2(torch.tanh(self.conv1(x))) + self.skip(x))

    torch.manual_seed(0)
    widths = [(64, 64, 1), (64, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1)]
    widths += [(256, 512, 2), (512, 512, 1)]
    model = nn.Sequential(
        nn.Conv2d(3, 64, 3, 1, 1, bias=False),
        *[Block(*w) for w in widths],
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(512, 10),
    )
    x = torch.randn(batch, 3, 16, 16)
    y = torch.randint(0, 10, (batch,))
    return TimedOperator(est.hessian(model, nn.CrossEntropyLoss(), [(x, y)]))


def run_case(op: Any, task: str, k: int, steps: int, budget: int | None = None) -> dict[str, float]:
    """One run of ``task`` on ``op``: seconds, products, seconds in and outside products.

    With ``budget`` eigsh stops after that many products and ARPACK after 3 restarts (about
    as many): the time per step, not the answer, is measured.
    """
    op.seconds, op.columns = 0.0, 0
    tol = float(np.sqrt(np.finfo(np.float32).eps))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if task == "eigsh":
            es.eigsh(op, k=k, tol=tol, seed=0, return_eigenvectors=False, max_matvecs=budget)
        elif task == "lanczos":
            es.lanczos(op, steps, seed=0)
        elif task == "spectral_density":
            es.spectral_density(op, num_steps=steps, num_probes=1, seed=0)
        elif task == "spectral_density_partial":
            es.spectral_density(op, num_steps=steps, num_probes=1, seed=0, reorth="partial")
        else:  # ARPACK on the same products, float32 as the operator
            xp, dtype, device = op.xp, op.dtype, op.device
            n = op.shape[0]

            def mv(v: np.ndarray) -> np.ndarray:
                x = backends.from_numpy(
                    np.asarray(v, dtype=np.float32).reshape(n, -1), xp=xp, dtype=dtype, device=device
                )
                return backends.to_numpy(op.matmat(x))

            lin = spla.LinearOperator((n, n), matvec=mv, matmat=mv, dtype=np.float32)
            v0 = np.random.default_rng(0).standard_normal(n).astype(np.float32)
            with contextlib.suppress(spla.ArpackNoConvergence):  # the budget: 3 restarts
                spla.eigsh(lin, k=k, which="LA", tol=tol, v0=v0, return_eigenvectors=False, maxiter=budget and 3)
    wall = time.perf_counter() - start
    products = max(op.columns, 1)
    return {
        "seconds": wall,
        "products": op.columns,
        "in_products_s": op.seconds,
        "outside_per_step_s": (wall - op.seconds) / products,
        "product_s": op.seconds / products,
    }


def measure(
    op: Any, tasks: list[str], k: int, steps: int, repeats: int, budget: int | None = None
) -> dict[str, dict[str, Any]]:
    """Interleaved repeats of every task; medians (and ranges) of each figure."""
    runs: dict[str, list[dict[str, float]]] = {t: [] for t in tasks}
    for _ in range(repeats):
        for task in tasks:
            runs[task].append(run_case(op, task, k, steps, budget))
            trim()
    out: dict[str, dict[str, Any]] = {}
    for task, rows in runs.items():
        out[task] = {key: summary([r[key] for r in rows])["median"] for key in rows[0]}
        out[task]["outside_per_step_range_s"] = [
            min(r["outside_per_step_s"] for r in rows),
            max(r["outside_per_step_s"] for r in rows),
        ]
    return out


TASKS = ["eigsh", "lanczos", "spectral_density", "spectral_density_partial", "arpack"]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the cases, merge them under ``--label`` into the results file, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 10⁵ only, one repeat, no model; writes nothing")
    parser.add_argument("--label", default="after", help="the key the rows are stored under (before/after)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="1e6,1e7", help="diagonal sizes, comma-separated")
    parser.add_argument("--backends", default="torch,numpy")
    parser.add_argument("--no-model", action="store_true", help="skip the ResNet-shaped Hessian")
    parser.add_argument("--model-only", action="store_true", help="only the ResNet-shaped Hessian")
    parser.add_argument("--model-repeats", type=int, default=1, help="repeats of the model case (~3 min each)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # the model case as in issue #13; the diagonal cases are single-pass anyway
    sizes = [100_000] if args.quick else [int(float(s)) for s in args.sizes.split(",")]
    sizes = [] if args.model_only else sizes
    repeats = 1 if args.quick else args.repeats
    rows: dict[str, Any] = {}
    for n in sizes:
        # 100 steps at 10⁶; at 10⁷ a 100-vector float32 basis is 4 GB, so 40 steps (1.6 GB).
        steps = 100 if n <= 1_000_000 else 40
        for backend in args.backends.split(","):
            op = diagonal(n, backend)
            rows[f"diagonal {backend} n={n:.0e}"] = {"n": n, "steps": steps, **measure(op, TASKS, 5, steps, repeats)}
            del op
            trim()
            print(json.dumps({k: v for k, v in rows.items()}, indent=1)[-2000:], flush=True)
    if not (args.quick or args.no_model):
        op = resnet_hessian()
        n = op.shape[0]
        # One product costs ~0.5 s: a fixed budget of about 60 products per method (eigsh does not
        # converge within it: the time per step is what is measured), 40 Lanczos steps.
        rows[f"resnet-shaped CNN torch n={n:.2e}"] = {
            "n": n,
            "steps": 40,
            "budget": 60,
            **measure(op, ["eigsh", "lanczos", "arpack"], 5, 40, args.model_repeats, budget=60),
        }
    if args.quick:
        return rows
    data = json.loads(args.output.read_text()) if args.output.exists() else {}
    data.setdefault("runs", {}).setdefault(args.label, {}).update(rows)
    data["meta"] = {
        "date": datetime.date.today().isoformat(),
        "cpu": cpu_model(),
        "versions": versions("numpy", "scipy", "torch"),
        "dtype": "float32",
        "torch_threads": 1,
        "k": 5,
        "repeats": repeats,
    }
    args.output.write_text(json.dumps(data, indent=1) + "\n")
    return rows


if __name__ == "__main__":
    main()
