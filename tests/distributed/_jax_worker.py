"""The JAX operators on a 2-device mesh against one device: ``python _jax_worker.py OUT``.

Run with ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` (JAX reads it when it
starts, so the test runs this in a fresh process); then runs
``examples/distributed_jax.py`` in the same process and pickles what it saw to ``OUT``.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

jax.config.update("jax_enable_x64", True)
ROOT = Path(__file__).resolve().parents[2]

import eigenscope as es  # noqa: E402
from eigenscope.adapters import jax as ejx  # noqa: E402


def model_fn(p: Any, x: jax.Array) -> jax.Array:
    return jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"]


def output_loss(logits: jax.Array, y: jax.Array) -> jax.Array:
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))


def loss_fn(p: Any, x: jax.Array, y: jax.Array) -> jax.Array:
    return output_loss(model_fn(p, x), y)


# Fast compilation (docs/jax.md): this test compiles about 20 small programs.
FAST = {
    "compiler_options": {
        "xla_backend_optimization_level": 0,
        "xla_llvm_disable_expensive_passes": True,
        "xla_cpu_use_fusion_emitters": False,
    }
}


def run() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    params = {"w1": rng.standard_normal((3, 8)) / 2, "b1": np.zeros(8), "w2": rng.standard_normal((8, 3)) / 3}
    x, y = rng.standard_normal((11, 3)), rng.integers(0, 3, 11)
    batches = [(x[:4], y[:4]), (x[4:8], y[4:8]), (x[8:], y[8:])]  # the last (3 samples) cannot be split
    mesh = Mesh(np.array(jax.devices()), ("data",))
    out: dict[str, Any] = {"devices": len(jax.devices())}
    for label, kw in (("single", FAST), ("mesh", {"mesh": mesh, **FAST})):
        h = ejx.hessian(loss_fn, params, batches, **kw)
        n = h.shape[0]
        v = jax.device_put(jnp.asarray(rng.standard_normal((n, 3)) if label == "single" else out["V"]), h.device)
        out.setdefault("V", np.asarray(v))
        res = {"n": n, "replicated": h.num_replicated_batches, "repr": repr(h)}
        res["hv"] = np.asarray(h @ v[:, 0])
        res["hV"] = np.asarray(h @ v)
        res["out_sharding"] = str((h @ v).sharding)
        res["top3"] = es.eigsh(h, k=3, seed=0, tol=1e-12).eigenvalues
        g = ejx.ggn(model_fn, output_loss, params, batches, **kw)
        res["ggn_V"] = np.asarray(g @ v)
        m = ejx.gradient_covariance(loss_fn, params, batches, centered=True, **kw)
        res["cov_V"] = np.asarray(m @ v)
        res["gradient"] = np.asarray(m.gradient())
        out[label] = res
    split = [leaf.sharding.spec for leaf in jax.tree_util.tree_leaves(h._batches.batches)]
    out["specs"] = [tuple(s) for s in split]
    return out


if __name__ == "__main__":
    try:
        result = run()
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            runpy.run_path(str(ROOT / "examples" / "distributed_jax.py"), run_name="__main__")
        result["example"] = printed.getvalue()
    except Exception:
        result = {"error": traceback.format_exc()}
    Path(sys.argv[1]).write_bytes(pickle.dumps(result))
