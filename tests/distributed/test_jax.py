"""The JAX operators with the data split over a 2-device mesh equal the single-device ones.

JAX fixes its device count when it starts, and the test process has started it with one
CPU device: the comparison runs in a fresh process with
``XLA_FLAGS=--xla_force_host_platform_device_count=2``.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# Several processes per test: one xdist worker runs them all, so their ranks never compete.
pytestmark = pytest.mark.xdist_group("distributed")

WORKER = Path(__file__).resolve().parent / "_jax_worker.py"
ARRAYS = ["hv", "hV", "top3", "ggn_V", "cov_V", "gradient"]


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    pytest.importorskip("jax")
    out = tmp_path_factory.mktemp("jax") / "result.pkl"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, str(WORKER), str(out)], env=env, capture_output=True, text=True, timeout=180)
    assert out.exists(), proc.stdout + proc.stderr
    result = pickle.loads(out.read_bytes())
    assert "error" not in result, result.get("error")
    return result


@pytest.mark.parametrize("name", ARRAYS)
def test_mesh_equals_one_device(sharded, name):
    expected, actual = sharded["single"][name], sharded["mesh"][name]
    scale = max(float(np.abs(expected).max()), 1e-300)
    assert float(np.abs(actual - expected).max()) <= 1e-12 * scale


def test_batches_split_over_the_data_axis(sharded):
    assert sharded["devices"] == 2
    # Batches of 4 are split over the 2 devices; the batch of 3 is replicated (and still counted once).
    assert sharded["mesh"]["replicated"] == 1 and sharded["single"]["replicated"] == 0
    assert sharded["specs"] == [("data",)] * 4 + [()] * 2
    assert "mesh=data:2" in sharded["mesh"]["repr"]
    assert "P()" in sharded["mesh"]["out_sharding"]  # results are replicated, like the vectors


def test_example_on_two_devices(sharded):
    """``examples/distributed_jax.py``, run in the same 2-device process."""
    out = sharded["example"]
    assert out.startswith("2 device(s)") and "mesh=data:2" in out, out
    assert float(out.rsplit(":", 1)[1]) < 1e-5  # float32: the mesh and one device agree


def test_mesh_arguments_checked():
    """In the test process (one device): a one-device mesh works; bad arguments are named."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp
    from jax.sharding import Mesh

    from eigenscope.adapters import jax as ejx

    def loss_fn(p, x, y):
        return jnp.mean((x @ p["w"] - y) ** 2)

    params = {"w": np.ones((3, 1), np.float32)}
    data = [(np.ones((4, 3), np.float32), np.zeros((4, 1), np.float32))]
    mesh = Mesh(np.array(jax.devices()[:1]), ("data",))
    h = ejx.hessian(loss_fn, params, data, mesh=mesh)
    assert h.mesh is mesh and h.data_axis == "data" and h.num_replicated_batches == 0
    v = jax.device_put(jnp.ones(3, jnp.float32), h.device)  # one device: reported as that device
    np.testing.assert_allclose(np.asarray(h @ v), np.full(3, 2 * 3.0), rtol=1e-6)  # H = 2 xᵀx / 4
    with pytest.raises(TypeError, match=r"mesh must be a jax.sharding.Mesh"):
        ejx.hessian(loss_fn, params, data, mesh=jax.devices())
    with pytest.raises(ValueError, match="data_axis 'batch' is not an axis of the mesh"):
        ejx.hessian(loss_fn, params, data, mesh=mesh, data_axis="batch")
    with pytest.raises(ValueError, match="data_axis needs mesh="):
        ejx.hessian(loss_fn, params, data, data_axis="data")
    grid = Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ("x", "y"))
    with pytest.raises(ValueError, match="name the one the samples are split over"):
        ejx.hessian(loss_fn, params, data, mesh=grid)
    assert (
        ejx.ggn(
            lambda p, x: x @ p["w"], lambda o, y: jnp.mean((o - y) ** 2), params, data, mesh=grid, data_axis="y"
        ).data_axis
        == "y"
    )
