"""The JAX adapter against hand-written JAX: one product, an 8-vector block, cold starts.

On an MLP classifier (64-128-96-10, 21,674 parameters, 512 samples in 2 batches, float32;
the size of the MLP in issue 17) and on the zoo's W3 Wide&Deep at its tiny size:

- one Hessian-vector product of the operator (``H @ v``, flat vectors) against a
  hand-written ``jax.jit(jvp(grad))`` of the same per-batch loss on the same flat vector,
  called per batch and summed with the batch weights (target: ≤ 1.2×);
- one ``matmat`` of 8 vectors against 8 hand-written products (target: ≤ 5 hand products);
- cold starts, each in a fresh process: the first ``eigsh`` (k=5), ``trace`` (30 products),
  ``spectral_density`` (30 steps) after one warm-up product, their XLA compilations
  (counted with ``jax.monitoring``), the time split into compiling (tracing, lowering and
  XLA, from ``jax.monitoring``), products (the operator's ``matmat`` calls, their compiling
  excluded) and outside (the algorithm's own work), the operator's ``compile_seconds``, and
  the same call again (warm); with ``--cache`` also a second process on JAX's on-disk
  compilation cache.

Timings are interleaved, a warm-up round dropped, medians of the timed rounds (30: one
product takes milliseconds); ratios are taken round by round. Run
``python -m benchmarks.bench_jax_overhead`` (``--quick``: one round, nothing written);
figures go to ``benchmarks/results/jax_overhead.json``.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "jax_overhead.json"
TARGETS = {"hvp_vs_hand": 1.2, "matmat8_vs_hand_hvp": 5.0}


def mlp_problem(seed: int = 0) -> tuple[Any, Any, list[tuple[Any, Any]]]:
    """``(loss_fn, params, batches)`` of the 64-128-96-10 tanh MLP, float32."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)
    sizes = (64, 128, 96, 10)
    params = [
        (jnp.asarray(rng.standard_normal((a, b)) / np.sqrt(a), jnp.float32), jnp.zeros(b, jnp.float32))
        for a, b in itertools.pairwise(sizes)
    ]

    def loss_fn(p: Any, x: Any, y: Any) -> Any:
        h = x
        for i, (w, b) in enumerate(p):
            h = h @ w + b
            if i < len(p) - 1:
                h = jnp.tanh(h)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(h), y[:, None], axis=1))

    x = rng.standard_normal((512, 64)).astype(np.float32)
    y = rng.integers(0, 10, 512)
    return loss_fn, params, [(x[i : i + 256], y[i : i + 256]) for i in range(0, 512, 256)]


def w3_problem() -> tuple[Any, Any, list[tuple[Any, Any]]]:
    """The zoo's Wide&Deep (W3) at its tiny size, float32."""
    from eigenscope.zoo import jax as zoo

    w = zoo.workload("wide_deep", "tiny")

    def loss_fn(p: Any, x: Any, y: Any) -> Any:
        return w.output_loss(w.model_fn(p, x), y)

    return loss_fn, w.params, list(w.batches)


def products(problem: str, rounds: int) -> dict[str, Any]:
    """Seconds of one product and of an 8-vector block, the adapter's and by hand."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    from eigenscope.adapters import jax as ejx

    loss_fn, params, batches = mlp_problem() if problem == "mlp" else w3_problem()
    op = ejx.hessian(loss_fn, params, batches)
    theta, unravel = ravel_pytree(params)
    device_batches = [jax.device_put(b) for b in batches]
    sizes = [int(jax.tree_util.tree_leaves(y)[0].shape[0]) for _, y in batches]
    weights = [s / sum(sizes) for s in sizes]

    @jax.jit
    def hand_hvp(th: Any, x: Any, y: Any, v: Any) -> Any:
        return jax.jvp(jax.grad(lambda t: loss_fn(unravel(t), x, y)), (th,), (v,))[1]

    def hand(v: Any) -> Any:
        return sum(w * hand_hvp(theta, x, y, v) for w, (x, y) in zip(weights, device_batches, strict=True))

    rng = np.random.default_rng(0)
    v = jnp.asarray(rng.standard_normal(op.shape[0]), op.dtype)
    block = jnp.asarray(rng.standard_normal((op.shape[0], 8)), op.dtype)
    column = v[:, None]
    runs = {
        "adapter_hvp": lambda: op @ v,
        "adapter_hvp_column": lambda: op @ column,  # the (n, 1) block the Krylov methods pass
        "hand_hvp": lambda: hand(v),
        "adapter_matmat8": lambda: op @ block,
    }
    seconds: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(rounds + 1):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            if r:
                seconds[name].append(time.perf_counter() - t0)
    err = float(jnp.max(jnp.abs(op @ v - hand(v))) / jnp.max(jnp.abs(hand(v))))
    ratios = {
        "hvp_vs_hand": statistics.median(
            a / b for a, b in zip(seconds["adapter_hvp"], seconds["hand_hvp"], strict=True)
        ),
        "hvp_column_vs_hand": statistics.median(
            a / b for a, b in zip(seconds["adapter_hvp_column"], seconds["hand_hvp"], strict=True)
        ),
        "matmat8_vs_hand_hvp": statistics.median(
            a / b for a, b in zip(seconds["adapter_matmat8"], seconds["hand_hvp"], strict=True)
        ),
    }
    return {
        "num_params": int(op.shape[0]),
        "batch_sizes": sizes,
        "vectorize": op.vectorize,
        "seconds_median": {k: statistics.median(s) for k, s in seconds.items()},
        "ratios": ratios,
        "met": {k: ratios[k] <= TARGETS[k] for k in TARGETS},
        "relative_difference_hvp": err,
    }


_COLD = r"""
import json, sys, time
import jax
if sys.argv[2]:
    jax.config.update("jax_compilation_cache_dir", sys.argv[2])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
from jax import monitoring
# Compiling: tracing, lowering and XLA's compile; "inside" is what happened during products.
EVENTS = ("/jax/core/compile/backend_compile_duration", "/jax/core/compile/jaxpr_trace_duration",
          "/jax/core/compile/jaxpr_to_mlir_module_duration")
seen = {"n": 0, "s": 0.0, "inside": 0.0, "in_product": False}
def listener(event, duration, **_):
    if event in EVENTS:
        seen["s"] += duration
        seen["inside"] += duration if seen["in_product"] else 0.0
    if event == EVENTS[0]:
        seen["n"] += 1
monitoring.register_event_duration_secs_listener(listener)
import jax.numpy as jnp
import eigenscope as es
from eigenscope.adapters import jax as ejx
from benchmarks.bench_jax_overhead import mlp_problem
loss_fn, params, batches = mlp_problem()
runs = {"eigsh": lambda h: es.eigsh(h, k=5, seed=0), "trace": lambda h: es.trace(h, 30, seed=0),
        "spectral_density": lambda h: es.spectral_density(h, num_steps=30, seed=0)}
t0 = time.perf_counter(); h = ejx.hessian(loss_fn, params, batches)
jax.block_until_ready(h @ jnp.ones(h.shape[0], h.dtype)); warm = time.perf_counter() - t0
out = {"build_and_first_product_s": warm, "compilations_first_product": seen["n"]}
product_s = [0.0]
matmat = h.matmat
def timed(x):  # the operator's products, to the last result
    seen["in_product"] = True; t = time.perf_counter()
    y = jax.block_until_ready(matmat(x))
    product_s[0] += time.perf_counter() - t; seen["in_product"] = False
    return y
h.matmat = timed
fn = runs[sys.argv[1]]
for label in ("first", "second"):
    n0, s0, i0, p0, c0 = seen["n"], seen["s"], seen["inside"], product_s[0], h.compile_seconds
    t0 = time.perf_counter()
    fn(h)
    total, compiling = time.perf_counter() - t0, seen["s"] - s0
    products = product_s[0] - p0 - (seen["inside"] - i0)
    out[label] = {"seconds": total, "compilations": seen["n"] - n0, "compile_seconds": compiling,
                  "product_seconds": products, "outside_seconds": total - compiling - products,
                  "operator_compile_seconds": h.compile_seconds - c0}
out["num_matvecs"] = h.num_matvecs
print(json.dumps(out))
"""


def cold(name: str, cache_dir: str = "") -> dict[str, Any]:
    """One fresh process: build, one product, then ``name`` twice."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", _COLD, name, cache_dir], capture_output=True, text=True, cwd=root, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and write its JSON (unless ``--quick``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="one round, nothing written")
    parser.add_argument("--cache", action="store_true", help="also cold starts on the on-disk compilation cache")
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else args.rounds
    from benchmarks._common import cpu_model, versions

    results: dict[str, Any] = {
        "benchmark": "jax_overhead",
        "command": "python -m benchmarks.bench_jax_overhead" + (" --cache" if args.cache else ""),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "load_average_at_start": os.getloadavg()},
        "versions": versions("jax", "jaxlib", "numpy"),
        "settings": {"dtype": "float32", "timed_rounds": rounds, "warmup_rounds": 1, "targets": TARGETS},
        "products": {p: products(p, rounds) for p in ("mlp", "w3_tiny")},
        "cold_start": {name: cold(name) for name in ("eigsh", "trace", "spectral_density")},
    }
    if args.cache:
        with tempfile.TemporaryDirectory() as tmp:
            cold("eigsh", tmp)  # fills the cache
            results["cold_start_cached_eigsh"] = cold("eigsh", tmp)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    print(json.dumps({"products": results["products"], "cold_start": results["cold_start"]}, indent=1))
    if not args.quick:
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
