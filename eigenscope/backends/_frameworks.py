"""One object per array framework: what the Array API standard leaves out, done once.

The standard has no random numbers, no host transfer, no in-place column write that works
on every library, and no notion of "every new shape costs a compilation". Each
:class:`Framework` supplies those for one library; :func:`framework_of` looks it up once
from an array namespace (as SciPy's ``array_namespace`` is asked once), and everything
above this package talks to the object instead of comparing backend names.

Random state is explicit: ``generator(seed, device)`` makes the framework's native state
(a NumPy ``Generator``, a ``torch.Generator`` on the device, a JAX key, a CuPy generator)
and every draw returns ``(new_state, array)``, which reads the same for JAX's functional
keys and the stateful generators of the others.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

Array = Any
"""An array of any supported backend (the standard has no static type yet)."""

Seed = Any
"""``None``, an ``int``, a ``numpy.random.Generator``, a ``torch.Generator``, a JAX key,
a CuPy generator, or a :class:`eigenscope.backends.RandomSource`."""

_MAX_SEED = 2**63 - 1


def dtype_name(dtype: Any) -> str:
    """A readable name for a dtype of any backend (``"float32"``, ``"int64"``, ...)."""
    if isinstance(dtype, type):
        dtype = np.dtype(dtype)
    name = getattr(dtype, "name", None)
    if isinstance(name, str):
        return name
    return str(dtype).rsplit(".", 1)[-1]


def int_seed(seed: Seed) -> int:
    """A 63-bit integer seed from ``None`` (fresh entropy), an int or a NumPy generator."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(2, np.uint32).view(np.uint64)[0] >> 1)
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        return int(seed)
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, _MAX_SEED))
    raise TypeError(
        "seed must be None, an int, a numpy.random.Generator or the backend's own "
        f"generator/key, got {type(seed).__name__}"
    )


TRACED_MESSAGE = (
    "{who} was called inside jax.jit (a traced function; or under vmap, grad, scan): eigenscope's "
    "algorithms are host-driven loops (a few scalars cross to the host at every step, and the "
    "number of steps depends on them), so they cannot be traced. Call it outside the jitted "
    "function, on concrete arrays; the operator's products are compiled already (the JAX "
    "adapter jits them)"
)
"""The message of :class:`TracedCallError`."""


class TracedCallError(TypeError):
    """An algorithm called under a tracing transformation (``jax.jit``), which a host-driven
    loop cannot run under."""


class Framework:
    """A standard-conforming array library with nothing special: the generic behaviour.

    Random draws run on the host with NumPy and are moved to the device; columns are
    written in place; float64 is available.
    """

    name = "array_api"
    static_shapes = False
    """Whether every new array shape costs a compilation (then loops keep shapes fixed)."""
    chunked_reductions = True
    """Whether long inner products and norms go in chunks added in float64: no n-length
    temporary, and short sums in the working precision (NumPy's own pairwise sum of a
    1-d array is as accurate, and its temporaries cheap: it sums ``x * y``)."""

    def __init__(self, xp: ModuleType) -> None:
        self.xp = xp

    def __repr__(self) -> str:
        return f"<eigenscope framework {self.name}>"

    # -- host transfer ------------------------------------------------------------------
    def to_host(self, x: Array) -> np.ndarray:
        """A NumPy copy (or view) of a small array."""
        return np.asarray(x)

    def from_host(self, a: np.ndarray, *, dtype: Any, device: Any) -> Array:
        """A host array moved to this framework, with ``dtype`` on ``device``."""
        return self.xp.asarray(np.asarray(a, dtype=dtype_name(dtype)), dtype=dtype, device=device)

    def has_float64(self) -> bool:
        """Whether float64 arrays compute in float64."""
        return True

    def check_eager(self, who: str) -> None:
        """Raise :class:`TracedCallError` if called while a compiler traces the caller
        (``jax.jit``): the algorithms are host-driven loops. Nothing to check by default."""

    def host_loop_pays(self, device: Any, n: int) -> bool:
        """Whether an algorithm on ``n``-vectors of this framework on ``device`` runs faster
        with its per-step arithmetic on NumPy, one vector crossing each way per product.

        True where every small eager operation costs a compilation the first time its shape
        is seen (JAX) and the transfers cost less than that; False by default.
        """
        return False

    def host_generator(self, seed: Seed) -> np.random.Generator:
        """A NumPy generator for a host loop run on this framework's behalf, determined by
        ``seed`` (what :meth:`generator` accepts): the same seed gives the same draws."""
        self.check_seed(seed)
        return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(int_seed(seed))

    # -- writes into preallocated arrays -----------------------------------------------
    def set_columns(self, basis: Array, start: int, block: Array) -> Array:
        """``basis[:, start:start + b] = block``; returns the (updated) basis."""
        basis[:, start : start + block.shape[1]] = block
        return basis

    def set_index(self, array: Array, index: tuple, value: Array) -> Array:
        """``array[index] = value``; returns the (updated) array."""
        array[index] = value
        return array

    def subtract_product(self, w: Array, a: Array, b: Array) -> Array:
        """``w − a @ b`` written into ``w`` (the caller's own array); returns it. Generic: the
        product is a temporary the size of ``w``."""
        w -= a @ b
        return w

    def subtract_scaled(self, w: Array, a: Array, x: Array) -> Array:
        """``w − a · x`` (``a`` broadcast against ``x``) written into ``w``; returns it. Generic:
        ``a · x`` is a temporary the size of ``w``."""
        w -= a * x
        return w

    # -- random streams -----------------------------------------------------------------
    def check_seed(self, seed: Seed) -> None:
        """Refuse seeds the framework's generators cannot take."""

    def generator(self, seed: Seed, device: Any) -> Any:
        """The native random state for ``seed`` on ``device``."""
        return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(int_seed(seed))

    def normal(self, state: Any, shape: tuple[int, ...], dtype: Any, device: Any) -> tuple[Any, Array]:
        """Standard normal entries: ``(new_state, array)``."""
        return state, self.from_host(state.standard_normal(shape, dtype=dtype_name(dtype)), dtype=dtype, device=device)

    def rademacher(self, state: Any, shape: tuple[int, ...], dtype: Any, device: Any) -> tuple[Any, Array]:
        """Entries ±1 with equal probability: ``(new_state, array)``."""
        draw = 2.0 * state.integers(0, 2, size=shape) - 1.0
        return state, self.from_host(draw, dtype=dtype, device=device)

    def spawn(self, state: Any, device: Any) -> tuple[Any, Any]:
        """``(new_state, child)``: a child state independent of the parent's later draws."""
        return state, np.random.default_rng(int(state.integers(0, _MAX_SEED)))


class NumpyFramework(Framework):
    """NumPy: host arrays already."""

    name = "numpy"
    chunked_reductions = False

    def from_host(self, a: np.ndarray, *, dtype: Any, device: Any) -> Array:
        return np.asarray(a, dtype=dtype)


class StrictFramework(Framework):
    """``array_api_strict``: the reference namespace, which forbids ``__array__`` on purpose."""

    name = "array_api_strict"

    def to_host(self, x: Array) -> np.ndarray:
        return np.asarray(x._array)

    def from_host(self, a: np.ndarray, *, dtype: Any, device: Any) -> Array:
        return self.xp.asarray(np.asarray(a, dtype=dtype_name(dtype)), device=device)


def _check_64_bit(name: str, seed: Seed) -> None:
    if isinstance(seed, (int, np.integer)) and seed >= 2**64:
        raise ValueError(
            f"seed must be an integer in [0, 2**64 - 1] for the {name} backend (its generators "
            f"take 64-bit seeds), got {seed}"
        )


class TorchFramework(Framework):
    """PyTorch: a ``torch.Generator`` on the operator's device draws there."""

    name = "torch"

    def to_host(self, x: Array) -> np.ndarray:
        return x.detach().cpu().numpy()

    def from_host(self, a: np.ndarray, *, dtype: Any, device: Any) -> Array:
        import torch  # the caller holds a torch namespace, so torch is importable

        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

    def check_seed(self, seed: Seed) -> None:
        _check_64_bit(self.name, seed)

    def generator(self, seed: Seed, device: Any) -> Any:
        import torch

        if isinstance(seed, torch.Generator):
            return seed
        self.check_seed(seed)
        gen = torch.Generator(device=device)
        gen.manual_seed(int_seed(seed))
        return gen

    def normal(self, state: Any, shape: tuple[int, ...], dtype: Any, device: Any) -> tuple[Any, Array]:
        import torch

        return state, torch.randn(shape, generator=state, dtype=dtype, device=device)

    def subtract_product(self, w: Array, a: Array, b: Array) -> Array:
        # BLAS accumulates into w: no temporary, one pass fewer (at n = 10⁷ a fresh
        # n-length array costs more than the arithmetic, its pages mapped on first touch).
        if w.ndim == 2 and a.ndim == 2:
            return w.addmm_(a, b, alpha=-1)
        if w.ndim == 3 and a.ndim == 3:
            return w.baddbmm_(a, b, alpha=-1)
        w -= a @ b
        return w

    def subtract_scaled(self, w: Array, a: Array, x: Array) -> Array:
        return w.addcmul_(a, x, value=-1)  # one fused pass, no temporary

    def rademacher(self, state: Any, shape: tuple[int, ...], dtype: Any, device: Any) -> tuple[Any, Array]:
        import torch

        bits = torch.randint(0, 2, shape, generator=state, device=device)
        return state, (2 * bits - 1).to(dtype)

    def spawn(self, state: Any, device: Any) -> tuple[Any, Any]:
        import torch

        seed = int(torch.randint(0, _MAX_SEED, (1,), generator=state, device=state.device).item())
        child = torch.Generator(device=device)
        child.manual_seed(seed)
        return state, child


class JaxFramework(Framework):
    """JAX: immutable arrays (functional writes), keys split per draw, shapes compiled."""

    name = "jax"
    static_shapes = True

    def to_host(self, x: Array) -> np.ndarray:
        import jax

        if isinstance(x, jax.core.Tracer):
            raise TracedCallError(TRACED_MESSAGE.format(who="eigenscope"))
        return np.asarray(x)

    def check_eager(self, who: str) -> None:
        import jax
        import jax.numpy as jnp

        # Under jax.jit every new array is a tracer: one tiny array tells (about 40 µs).
        if isinstance(jnp.zeros(()), jax.core.Tracer):
            raise TracedCallError(TRACED_MESSAGE.format(who=who))

    def from_host(self, a: np.ndarray, *, dtype: Any, device: Any) -> Array:
        import jax

        return jax.device_put(np.asarray(a, dtype=dtype_name(dtype)), device)

    HOST_LOOP_MAX_N_ACCELERATOR = 10**5
    """Largest ``n`` at which :meth:`host_loop_pays` says yes on a GPU or TPU (on a CPU device:
    any n). The figures behind both are in ``docs/jax.md``, *First calls*."""

    def host_loop_pays(self, device: Any, n: int) -> bool:
        # Eager JAX compiles each small operation of a Krylov step once per shape (30-100
        # programs, 3-7 s on a CPU) and copies the whole basis at every functional column write;
        # NumPy does neither. On a CPU device the host loop was faster first and warm at every n
        # measured (10^4-10^6). On an accelerator one vector crosses each way per product and
        # the step runs on the host CPU: worth it while n is small. Several devices (a mesh's
        # replicated vectors: a sharding, not a device) keep the JAX loop.
        import jax

        if not isinstance(device, jax.Device):
            return False
        return device.platform == "cpu" or n <= self.HOST_LOOP_MAX_N_ACCELERATOR

    def host_generator(self, seed: Seed) -> np.random.Generator:
        import jax

        if seed is None or isinstance(seed, (int, np.integer, np.random.Generator)) or not hasattr(seed, "dtype"):
            return super().host_generator(seed)  # (refuses what is not a seed, naming what is)
        # A JAX key, typed or raw: its bits seed the host stream (deterministic, and no
        # jax.random call, each of which compiles once per shape: 0.3-1.3 s on CPU).
        bits = jax.random.key_data(seed) if jax.dtypes.issubdtype(seed.dtype, jax.dtypes.prng_key) else seed
        return np.random.default_rng([int(b) for b in np.asarray(bits, dtype=np.uint32).ravel()])

    def has_float64(self) -> bool:
        # Without jax_enable_x64 JAX returns float32 (with a warning) when asked for float64.
        import jax

        return bool(jax.config.read("jax_enable_x64"))

    def set_columns(self, basis: Array, start: int, block: Array) -> Array:
        return basis.at[:, start : start + block.shape[1]].set(block)

    def set_index(self, array: Array, index: tuple, value: Array) -> Array:
        return array.at[index].set(value)

    def check_seed(self, seed: Seed) -> None:
        _check_64_bit(self.name, seed)

    def generator(self, seed: Seed, device: Any) -> Any:
        import jax

        if seed is not None and not isinstance(seed, (int, np.integer, np.random.Generator)):
            return seed  # a JAX key, typed or raw
        self.check_seed(seed)
        return jax.random.key(int_seed(seed))

    def normal(self, state: Any, shape: tuple[int, ...], dtype: Any, device: Any) -> tuple[Any, Array]:
        import jax

        state, key = jax.random.split(state)
        return state, jax.device_put(jax.random.normal(key, shape, dtype), device)

    def rademacher(self, state: Any, shape: tuple[int, ...], dtype: Any, device: Any) -> tuple[Any, Array]:
        import jax

        state, key = jax.random.split(state)
        return state, jax.device_put(jax.random.rademacher(key, shape, dtype), device)

    def spawn(self, state: Any, device: Any) -> tuple[Any, Any]:
        import jax

        state, child = jax.random.split(state)
        return state, child


class CupyFramework(Framework):
    """CuPy: a generator whose state lives on the operator's GPU."""

    name = "cupy"

    @staticmethod
    def _on(device: Any) -> Any:
        """A context making ``device`` (a ``cupy.cuda.Device`` or its id) CuPy's current device."""
        import cupy

        return device if isinstance(device, cupy.cuda.Device) else cupy.cuda.Device(device)

    def to_host(self, x: Array) -> np.ndarray:
        return x.get()

    def check_seed(self, seed: Seed) -> None:
        _check_64_bit(self.name, seed)

    def generator(self, seed: Seed, device: Any) -> Any:
        import cupy

        if isinstance(seed, cupy.random.Generator):
            return seed
        self.check_seed(seed)
        with self._on(device):
            return cupy.random.default_rng(int_seed(seed))

    def normal(self, state: Any, shape: tuple[int, ...], dtype: Any, device: Any) -> tuple[Any, Array]:
        with self._on(device):  # not the current device: the operator's
            return state, state.standard_normal(shape, dtype=dtype)

    def rademacher(self, state: Any, shape: tuple[int, ...], dtype: Any, device: Any) -> tuple[Any, Array]:
        with self._on(device):
            bits = state.integers(0, 2, size=shape)
            return state, (2 * bits - 1).astype(dtype)

    def spawn(self, state: Any, device: Any) -> tuple[Any, Any]:
        import cupy

        with self._on(device):
            seed = int(state.integers(0, _MAX_SEED, size=1).get()[0])
            return state, cupy.random.default_rng(seed)


_KNOWN = (
    (array_api_compat.is_numpy_namespace, NumpyFramework),
    (array_api_compat.is_torch_namespace, TorchFramework),
    (array_api_compat.is_jax_namespace, JaxFramework),
    (array_api_compat.is_cupy_namespace, CupyFramework),
    (array_api_compat.is_array_api_strict_namespace, StrictFramework),
)


@functools.cache
def framework_of(xp: ModuleType) -> Framework:
    """The :class:`Framework` behind Array API namespace ``xp`` (looked up once per namespace).

    Any other standard-conforming library gets the generic :class:`Framework`, named after
    its module.
    """
    for matches, cls in _KNOWN:
        if matches(xp):
            return cls(xp)
    generic = Framework(xp)
    generic.name = xp.__name__
    return generic
