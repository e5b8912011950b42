"""Seeded random probes on the operator's own backend, device and dtype.

The Array API standard has no random numbers, so each framework's native generator is
used (see :mod:`._frameworks`): a NumPy ``Generator``, a ``torch.Generator`` on the
operator's device, a JAX key split once per draw, CuPy's generator. No global random
state is read or changed.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from ._frameworks import Array, Seed, framework_of
from ._namespace import check_dtype

DISTRIBUTIONS = ("rademacher", "normal", "gaussian", "sphere")
"""Probe distributions :meth:`RandomSource.probes` draws; all have ``E[z zᵀ] = I``."""


class RandomSource:
    """Draws Gaussian, Rademacher and sphere arrays for one backend and device.

    Build one with :func:`random_source`; successive draws continue the same stream, so
    one seed gives one reproducible sequence of probes. :meth:`spawn` splits off an
    independent stream for a second consumer (a symmetry check, a second estimator).
    """

    def __init__(self, seed: Seed, *, xp: ModuleType, device: Any) -> None:
        self.xp = xp
        self.device = device
        self.framework = framework_of(xp)
        self._state = self.framework.generator(seed, device)

    @property
    def backend(self) -> str:
        """The framework's short name (``"numpy"``, ``"torch"``, ...)."""
        return self.framework.name

    def normal(self, shape: tuple[int, ...], dtype: Any) -> Array:
        """Standard normal entries, ``shape`` on this source's device."""
        check_dtype(dtype, what="random draw")
        self._state, draw = self.framework.normal(self._state, shape, dtype, self.device)
        return draw

    def rademacher(self, shape: tuple[int, ...], dtype: Any) -> Array:
        """Entries ±1 with equal probability, ``shape`` on this source's device."""
        check_dtype(dtype, what="random draw")
        self._state, draw = self.framework.rademacher(self._state, shape, dtype, self.device)
        return draw

    def sphere(self, shape: tuple[int, int], dtype: Any) -> Array:
        """Columns uniform on the sphere of radius √n, ``n = shape[0]``.

        ``E[z zᵀ] = I`` like Gaussian probes, without the variance that ``‖z‖`` adds.
        """
        g = self.normal(shape, dtype)
        norms = self.xp.sqrt(self.xp.sum(g * g, axis=0))
        return g * (math.sqrt(shape[0]) / norms)

    def probes(self, shape: tuple[int, ...], dtype: Any, distribution: str) -> Array:
        """Draw ``"rademacher"``, ``"normal"`` (``"gaussian"``) or ``"sphere"`` probe vectors."""
        if distribution == "rademacher":
            return self.rademacher(shape, dtype)
        if distribution in ("normal", "gaussian"):
            return self.normal(shape, dtype)
        if distribution == "sphere":
            return self.sphere(shape, dtype)  # type: ignore[arg-type]
        raise ValueError(f"probe distribution must be one of {', '.join(DISTRIBUTIONS)}, got {distribution!r}")

    def spawn(self) -> RandomSource:
        """An independent stream on the same backend and device, derived from this one.

        Deterministic given this source's state; it advances this source, so the parent's
        later draws differ from the child's.
        """
        self._state, child = self.framework.spawn(self._state, self.device)
        return RandomSource(child, xp=self.xp, device=self.device)


def random_source(seed: Seed, *, xp: ModuleType, device: Any) -> RandomSource:
    """A :class:`RandomSource` for backend ``xp`` on ``device`` seeded by ``seed``.

    ``seed`` may itself be a :class:`RandomSource`; it is returned as is (draws continue
    its stream).
    """
    if isinstance(seed, RandomSource):
        if seed.framework is not framework_of(xp):
            raise TypeError(f"seed is a {seed.backend} random source, the operator is {framework_of(xp).name}")
        return seed
    return RandomSource(seed, xp=xp, device=device)
