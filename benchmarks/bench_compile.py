"""Compiled curvature products (``compile=``) on the zoo workloads: compile time cold and warm,
product speed against the eager default, and what ``compile="auto"`` does in a density run.

For each workload, in fresh processes sharing one new torch compile cache directory:

1. ``cold``: ``est.hessian(..., compile=True)``: the first product's compile time with an empty
   cache, then eager (the default ``cache_graphs="auto"`` operator) and compiled products
   interleaved: medians, the per-round ratio compiled ÷ eager, and their relative difference;
2. ``warm``: the same in a second process (torch's on-disk cache and eigenscope's compile
   index now hold this product);
3. ``density``: ``es.spectral_density(H, 100, 1)`` at the defaults (``compile="auto"``) with
   that warm cache, and the same run with ``compile=False``, interleaved: what ``"auto"``
   decided, its compile time, and the end-to-end ratio. With ``--cold-density`` also in a
   fresh cache directory (``"auto"`` must then stay eager, within noise of ``compile=False``).

Run ``python -m benchmarks.bench_compile`` (``--workloads W3,W2``; ``--rounds``); results go to
``benchmarks/results/compile.json``. Seconds are from a shared 2-core machine: compare ratios.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "compile.json"


def _worker(name: str, mode: str, rounds: int) -> dict[str, Any]:
    import torch

    import eigenscope as es
    from eigenscope import zoo
    from eigenscope.adapters import torch as est

    torch.set_num_threads(2)
    torch.manual_seed(0)
    w = zoo.workload(name)
    out: dict[str, Any] = {"workload": name, "mode": mode, "num_params": w.num_params}
    if mode in ("cold", "warm"):
        eager = est.hessian(w.model, w.loss_fn, w.batches, compile=False)
        fast = est.hessian(w.model, w.loss_fn, w.batches, compile=True)
        v = torch.randn(eager.shape[0], generator=torch.Generator().manual_seed(1))
        start = time.perf_counter()
        y = fast @ v
        out["first_product_s"] = time.perf_counter() - start
        out["compile_s"] = fast.compile_seconds
        out["compiled"] = fast.compiled
        out["reason"] = fast.compile_reason
        ref = eager @ v  # also the warm-up of the eager operator's cache
        out["relative_difference"] = float((fast @ v - ref).norm() / ref.norm())
        del y
        te, tc, ratio = [], [], []
        for _ in range(rounds):
            a = time.perf_counter()
            eager @ v
            b = time.perf_counter()
            fast @ v
            c = time.perf_counter()
            te.append(b - a)
            tc.append(c - b)
            ratio.append((c - b) / (b - a))
        out["eager_product_s"] = statistics.median(te)
        out["compiled_product_s"] = statistics.median(tc)
        out["compiled_over_eager"] = statistics.median(ratio)
    else:
        times: dict[str, list[float]] = {"auto": [], "False": []}
        for r in range(rounds):
            for how in ("auto", False):
                H = est.hessian(w.model, w.loss_fn, w.batches, compile=how)
                start = time.perf_counter()
                es.spectral_density(H, 100, 1, seed=r)
                times[str(how)].append(time.perf_counter() - start)
                if how == "auto":
                    out.setdefault("auto_compiled", []).append(H.compiled)
                    out.setdefault("auto_compile_s", []).append(H.compile_seconds)
                    out.setdefault("auto_reason", []).append(H.compile_reason)
        out["density_auto_s"] = times["auto"]
        out["density_eager_s"] = times["False"]
        out["eager_over_auto"] = statistics.median(e / a for e, a in zip(times["False"], times["auto"], strict=True))
    return out


def _run(name: str, mode: str, cache: str, rounds: int) -> dict[str, Any]:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "OMP_WAIT_POLICY": "PASSIVE"}
    cmd = [sys.executable, "-m", "benchmarks.bench_compile", "--worker", name, mode, "--rounds", str(rounds)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"workload": name, "mode": mode, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """Run the cases and write ``benchmarks/results/compile.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="W3,W2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--density-rounds", type=int, default=3)
    parser.add_argument("--cold-density", action="store_true")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker[0], args.worker[1], args.rounds)))
        return
    rows = []
    for name in args.workloads.split(","):
        cache = tempfile.mkdtemp(prefix="eigenscope-compile-")
        for mode in ("cold", "warm"):
            rows.append(_run(name, mode, cache, args.rounds))
            print(json.dumps(rows[-1]), flush=True)
        rows.append(_run(name, "density", cache, args.density_rounds))
        print(json.dumps(rows[-1]), flush=True)
        if args.cold_density:
            row = _run(name, "density", tempfile.mkdtemp(prefix="eigenscope-compile-"), args.density_rounds)
            rows.append({**row, "mode": "density, cold cache"})
            print(json.dumps(rows[-1]), flush=True)
    from benchmarks._common import cpu_model, versions

    doc = {
        "command": "python -m benchmarks.bench_compile " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": cpu_model(),
        "load_average": list(os.getloadavg()),
        "versions": versions("torch", "numpy"),
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
