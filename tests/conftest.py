"""Shared fixtures: every backend that is installed, both supported dtypes."""

from __future__ import annotations

import importlib
import os

# The tests multiply tiny matrices, where a second BLAS/OpenMP thread only adds
# synchronization (and fights torch's own pool); set before numpy or torch load.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

import eigenscope.backends as eb  # noqa: E402

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=15, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("nightly", deadline=None, max_examples=500, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

BACKENDS = ["numpy", "array_api_strict", "torch", "jax", "cupy"]


def load_backend(name: str):
    """The array module of backend ``name``, or skip the test with the reason."""
    if name == "jax":
        jax = pytest.importorskip("jax")
        jax.config.update("jax_enable_x64", True)  # float64 tests need it; float32 still works
        return importlib.import_module("jax.numpy")
    if name == "cupy":
        cupy = pytest.importorskip("cupy")
        try:
            if cupy.cuda.runtime.getDeviceCount() < 1:
                pytest.skip("cupy: no GPU present")
        except Exception as exc:  # no driver at all
            pytest.skip(f"cupy: no usable GPU ({type(exc).__name__})")
        return cupy
    return pytest.importorskip(name)


@pytest.fixture(scope="session", params=BACKENDS)
def xp(request):
    """The Array API namespace of each installed backend (session-scoped for hypothesis)."""
    return eb.resolve_namespace(load_backend(request.param))


@pytest.fixture(scope="session", params=["float32", "float64"])
def dtype_name(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def dtype(xp, dtype_name):
    return getattr(xp, dtype_name)
