"""Curvature spectra of an Equinox model with eigenscope.

``ejx.equinox_loss`` and ``ejx.equinox_model`` partition the model into its floating-point
arrays (the parameters) and the rest (``eqx.partition``), and map the one-sample module over
the batch; a stateful model's ``eqx.nn.State`` goes in ``state=`` and is never written back::

    loss_fn, params = ejx.equinox_loss(model, mse)
    model_fn, params = ejx.equinox_model(model)

Run with ``python examples/jax_equinox.py`` (needs ``equinox``).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import eigenscope as es
from eigenscope.adapters import jax as ejx


def mse(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean squared error."""
    return jnp.mean((outputs - targets) ** 2)


def make_data(n: int = 200, batch: int = 64, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """A synthetic regression problem (targets from a random tanh teacher), in batches of 64
    (the last one holds 8: batches of unequal size are weighted by their size)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    y = np.tanh(x @ rng.standard_normal((8, 2))).astype(np.float32)
    return [(x[i : i + batch], y[i : i + batch]) for i in range(0, n, batch)]


def main(**options: Any) -> dict[str, Any]:
    """Both ends of the Hessian spectrum, the GGN's top eigenvalue and the spectral density;
    ``options`` go to the adapters (e.g. ``compiler_options``)."""
    model = eqx.nn.MLP(in_size=8, out_size=2, width_size=16, depth=2, activation=jnp.tanh, key=jax.random.key(0))
    data = make_data()

    # Pure functions of the parameter pytree (the model's floating-point arrays).
    loss_fn, params = ejx.equinox_loss(model, mse)
    model_fn, _ = ejx.equinox_model(model)

    hessian = ejx.hessian(loss_fn, params, data, **options)
    ends = es.eigsh(hessian, k=4, which="BE", seed=0)  # two from the top, two from the bottom
    ggn = ejx.ggn(model_fn, mse, params, data, **options)
    top_ggn = es.eigsh(ggn, k=1, seed=0)
    density = es.spectral_density(hessian, num_steps=30, num_probes=2, seed=0)

    print(f"{hessian.num_params} parameters, {hessian.num_samples} samples in batches {hessian.batch_sizes}")
    print("Hessian eigenvalues at both ends:", np.round(np.sort(ends.eigenvalues), 5))
    print(f"top GGN eigenvalue: {top_ggn.eigenvalues[0]:.5f}")
    print(f"negative mass of the Hessian spectrum: {density.negative_mass():.3f}")
    return {"ends": ends.eigenvalues, "top_ggn": top_ggn.eigenvalues[0], "density": density}


if __name__ == "__main__":
    main()
