"""Seeded random probes on the operator's own backend, device and dtype.

The Array API standard has no random numbers, so each backend's native
generator is used: a NumPy ``Generator``, a ``torch.Generator`` on the
operator's device, a JAX key split once per draw, CuPy's generator. No global
random state is read or changed.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from ._namespace import Array, backend_name, check_dtype, dtype_name, from_numpy

Seed = Any
"""``None``, an ``int``, a ``numpy.random.Generator``, a ``torch.Generator`` or a JAX key."""


def _int_seed(seed: Seed) -> int:
    """A 63-bit integer seed from ``None``, an int or a NumPy generator."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(2, np.uint32).view(np.uint64)[0] >> 1)
    if isinstance(seed, (int, np.integer)):
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        return int(seed)
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63 - 1))
    raise TypeError(
        "seed must be None, an int, a numpy.random.Generator or the backend's own "
        f"generator/key, got {type(seed).__name__}"
    )


def _cupy_device(device: Any) -> Any:
    """A context making ``device`` (a ``cupy.cuda.Device`` or its id) CuPy's current device."""
    import cupy

    return device if isinstance(device, cupy.cuda.Device) else cupy.cuda.Device(device)


class RandomSource:
    """Draws Gaussian and Rademacher arrays for one backend and device.

    Build one with :func:`random_source`; successive draws continue the same
    stream, so one seed gives one reproducible sequence of probes.
    """

    def __init__(self, seed: Seed, *, xp: ModuleType, device: Any) -> None:
        self.xp = xp
        self.device = device
        self.backend = backend_name(xp)
        self._state = self._make_state(seed)

    def _make_state(self, seed: Seed) -> Any:
        if self.backend in ("torch", "jax", "cupy") and isinstance(seed, (int, np.integer)) and seed >= 2**64:
            raise ValueError(
                f"seed must be an integer in [0, 2**64 - 1] for the {self.backend} backend (its generators "
                f"take 64-bit seeds), got {seed}"
            )
        if self.backend == "torch":
            import torch

            if isinstance(seed, torch.Generator):
                return seed
            gen = torch.Generator(device=self.device)
            gen.manual_seed(_int_seed(seed))
            return gen
        if self.backend == "jax":
            import jax

            if seed is not None and not isinstance(seed, (int, np.integer, np.random.Generator)):
                return seed  # a JAX key, typed or raw
            return jax.random.key(_int_seed(seed))
        if self.backend == "cupy":
            import cupy

            if isinstance(seed, cupy.random.Generator):
                return seed
            with _cupy_device(self.device):  # the generator's state lives on the operator's GPU
                return cupy.random.default_rng(_int_seed(seed))
        if isinstance(seed, np.random.Generator):
            return seed
        return np.random.default_rng(_int_seed(seed))

    def _next_jax_key(self) -> Any:
        import jax

        self._state, key = jax.random.split(self._state)
        return key

    def normal(self, shape: tuple[int, ...], dtype: Any) -> Array:
        """Standard normal entries, ``shape`` on this source's device."""
        check_dtype(dtype, what="random draw")
        if self.backend == "torch":
            import torch

            return torch.randn(shape, generator=self._state, dtype=dtype, device=self.device)
        if self.backend == "jax":
            import jax

            return jax.device_put(jax.random.normal(self._next_jax_key(), shape, dtype), self.device)
        if self.backend == "cupy":
            with _cupy_device(self.device):  # not the current device: the operator's
                return self._state.standard_normal(shape, dtype=dtype)
        draw = self._state.standard_normal(shape, dtype=dtype_name(dtype))
        return from_numpy(draw, xp=self.xp, dtype=dtype, device=self.device)

    def rademacher(self, shape: tuple[int, ...], dtype: Any) -> Array:
        """Entries ±1 with equal probability, ``shape`` on this source's device."""
        check_dtype(dtype, what="random draw")
        if self.backend == "torch":
            import torch

            bits = torch.randint(0, 2, shape, generator=self._state, device=self.device)
            return (2 * bits - 1).to(dtype)
        if self.backend == "jax":
            import jax

            return jax.device_put(jax.random.rademacher(self._next_jax_key(), shape, dtype), self.device)
        if self.backend == "cupy":
            with _cupy_device(self.device):
                bits = self._state.integers(0, 2, size=shape)
                return (2 * bits - 1).astype(dtype)
        draw = 2.0 * self._state.integers(0, 2, size=shape) - 1.0
        return from_numpy(draw, xp=self.xp, dtype=dtype, device=self.device)

    def probes(self, shape: tuple[int, ...], dtype: Any, distribution: str) -> Array:
        """Draw ``"rademacher"`` or ``"normal"`` probe vectors."""
        if distribution == "rademacher":
            return self.rademacher(shape, dtype)
        if distribution in ("normal", "gaussian"):
            return self.normal(shape, dtype)
        raise ValueError(f"probe distribution must be 'rademacher' or 'normal', got {distribution!r}")


def random_source(seed: Seed, *, xp: ModuleType, device: Any) -> RandomSource:
    """A :class:`RandomSource` for backend ``xp`` on ``device`` seeded by ``seed``."""
    return RandomSource(seed, xp=xp, device=device)
