"""Data-parallel curvature in JAX: every batch split over the devices of a mesh.

The batches are split along their sample axis over the mesh's ``"data"`` axis, the
parameters and vectors are replicated, and XLA sums the devices' shares inside the
compiled product. On a CPU, make the host look like two devices (JAX reads the flag when
it starts)::

    XLA_FLAGS=--xla_force_host_platform_device_count=2 python examples/distributed_jax.py

On a machine with several GPUs or TPU cores the same script uses all of them.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

import eigenscope as es
from eigenscope.adapters import jax as ejx


def model_fn(params: Any, x: jax.Array) -> jax.Array:
    """A two-layer tanh classifier."""
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return h @ params["w2"] + params["b2"]


def loss_fn(params: Any, x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean cross-entropy of integer labels."""
    logp = jax.nn.log_softmax(model_fn(params, x))
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def make_problem(n: int = 1024, batch: int = 256, seed: int = 0) -> tuple[dict[str, np.ndarray], list]:
    """Weights and a synthetic 3-class data set in batches of 256 (a batch whose size the
    mesh's data axis does not divide would be replicated: each device computing all of it)."""
    rng = np.random.default_rng(seed)
    params = {
        "w1": (rng.standard_normal((10, 32)) / np.sqrt(10)).astype(np.float32),
        "b1": np.zeros(32, np.float32),
        "w2": (rng.standard_normal((32, 3)) / np.sqrt(32)).astype(np.float32),
        "b2": np.zeros(3, np.float32),
    }
    x = rng.standard_normal((n, 10)).astype(np.float32)
    y = np.argmax(x @ rng.standard_normal((10, 3)), axis=1)
    return params, [(x[i : i + batch], y[i : i + batch]) for i in range(0, n, batch)]


def main() -> None:
    params, batches = make_problem()
    mesh = Mesh(np.array(jax.devices()), ("data",))
    H = ejx.hessian(loss_fn, params, batches, mesh=mesh)
    print(f"{mesh.size} device(s): {H}")

    top = es.eigsh(H, k=5, which="LA", seed=0)
    density = es.spectral_density(H, num_steps=30, num_probes=2, seed=1)
    print(f"top-5 eigenvalues: {np.array2string(top.eigenvalues, precision=5)}")
    print(f"trace (SLQ): {density.trace():.5f}")

    # The same operator on one device, for comparison: vectors go where the operator's live.
    single = ejx.hessian(loss_fn, params, batches)
    v = jax.random.normal(jax.random.key(0), (H.shape[0],), dtype=H.dtype)
    diff = np.abs(np.asarray(H @ jax.device_put(v, H.device)) - np.asarray(single @ v)).max()
    print(f"max |H_mesh v - H_one_device v|: {diff:.1e}")


if __name__ == "__main__":
    main()
