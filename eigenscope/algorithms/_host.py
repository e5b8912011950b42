"""Host-side loops: the algorithms' small per-step arithmetic on NumPy, the products where the
operator lives.

A Krylov step is a product and a dozen small array operations (norms, a Gram–Schmidt pass,
column writes). Eager JAX compiles each of those once per shape the first time it runs: the
first ``eigsh`` in a process compiled about 60 XLA programs, seconds on a CPU, for products of
milliseconds. NumPy runs them at once. :func:`on_host` wraps a public algorithm so that, for
an operator whose framework says the host loop pays
(:meth:`eigenscope.backends.Framework.host_loop_pays`: JAX on a CPU device at any size we
measured, on one accelerator while ``n`` is small), the algorithm runs on a NumPy view of the
operator — each product moves one block to the operator's framework and device and its result
back — and the result's vectors go back to the operator's framework, device and dtype.

Random draws are NumPy's, from a generator the framework derives from ``seed``
(:meth:`eigenscope.backends.Framework.host_generator`: an int as for a NumPy operator, a JAX
key by its bits): the same seed gives the same results, and no draw compiles (each
``jax.random`` draw of a new shape compiled for 0.3–1.3 s on a CPU). The stream differs from
the framework-side loop's, so ``seed=0`` gives other start vectors and probes than it did
there; a :class:`~eigenscope.backends.RandomSource` passed as ``seed`` keeps its own stream.
User-given vectors are moved to the host, the operator's counters count the products, and
anything unusual (an operand of another framework, dtype or device, a non-square operator,
several devices) runs the framework-side loop, whose checks raise the usual errors.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import backends
from ..backends import Array
from ..linop import LinearOperator

_NP = backends.resolve_namespace(np)


class HostOperator(LinearOperator):
    """A NumPy view of an operator of another framework: each product moves the block to the
    operator's device (one transfer), multiplies there, and moves the result back (one)."""

    def __init__(self, op: LinearOperator) -> None:
        super().__init__(
            shape=op.shape,
            dtype=np.dtype(backends.dtype_name(op.dtype)),
            device="cpu",
            xp=_NP,
            symmetric=op.symmetric,
            nonsymmetric_reason=getattr(op, "nonsymmetric_reason", None),
        )
        self.base = op
        self._framework = backends.framework_of(op.xp)

    def _to_base(self, x: np.ndarray) -> Array:
        return self._framework.from_host(np.ascontiguousarray(x), dtype=self.base.dtype, device=self.base.device)

    def _matmat(self, x: np.ndarray) -> np.ndarray:
        return self._framework.to_host(self.base.matmat(self._to_base(x)))

    def _rmatmat(self, y: np.ndarray) -> np.ndarray:
        return self._framework.to_host(self.base.rmatmat(self._to_base(y)))


class HostDraws(backends.RandomSource):
    """A NumPy random source whose draws are the operator's framework's, moved to the host.

    The framework-side loop draws from ``random_source(seed, xp=op.xp)``; drawing from the
    same source here keeps the stream (start vectors, probes) identical.
    """

    def __init__(self, inner: backends.RandomSource) -> None:  # no super(): no NumPy state
        self.xp = _NP
        self.device = "cpu"
        self.framework = backends.framework_of(_NP)
        self._inner = inner

    def _dtype(self, dtype: Any) -> Any:
        return getattr(self._inner.xp, backends.dtype_name(dtype))

    def _host(self, x: Array) -> np.ndarray:
        return self._inner.framework.to_host(x)

    def normal(self, shape: tuple[int, ...], dtype: Any) -> Array:
        return self._host(self._inner.normal(shape, self._dtype(dtype)))

    def rademacher(self, shape: tuple[int, ...], dtype: Any) -> Array:
        return self._host(self._inner.rademacher(shape, self._dtype(dtype)))

    def sphere(self, shape: tuple[int, int], dtype: Any) -> Array:
        return self._host(self._inner.sphere(shape, self._dtype(dtype)))

    def spawn(self) -> HostDraws:
        return HostDraws(self._inner.spawn())


def _native(x: Any, op: LinearOperator) -> bool:
    """Whether ``x`` is an array of the operator's namespace, device and dtype (what the
    framework-side checks accept; anything else goes there to be refused with their message)."""
    try:
        return (
            backends.namespace(x) is op.xp
            and x.dtype == op.dtype
            and backends.same_device(backends.device(x), op.device)
        )
    except TypeError:
        return False


def _host_operator(a: Any, arrays: dict[str, Any]) -> HostOperator | None:
    """The NumPy view of ``a`` when the host loop pays for it, else ``None``."""
    if not isinstance(a, LinearOperator) or isinstance(a, HostOperator):
        return None
    m, n = a.shape
    if m != n or n < 1:
        return None
    framework = backends.framework_of(a.xp)
    if not framework.host_loop_pays(a.device, n):
        return None
    if not all(_native(x, a) for x in arrays.values() if x is not None):
        return None
    return HostOperator(a)


def on_host(
    fn: Callable[..., Any],
    *,
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
    host_outputs: Callable[[dict[str, Any]], Sequence[str]] = lambda kwargs: (),
) -> Callable[..., Any]:
    """``fn`` (a public algorithm ``fn(A, /, ...)``) run on the host where that pays.

    ``inputs`` are its keyword arguments holding vectors (``v0``, ``probes``), moved to the
    host; ``outputs`` the fields of its result holding vectors, moved back to the operator's
    framework, device and dtype, except those ``host_outputs(kwargs)`` names (a basis the
    caller asked to keep in host memory). Costs, per product, one transfer of the block each
    way, on top of ``fn``'s own cost.
    """

    @functools.wraps(fn)
    def wrapper(A: Any, /, *args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.get(name) for name in inputs}
        host = _host_operator(A, given)
        if host is None:
            return fn(A, *args, **kwargs)
        framework = backends.framework_of(A.xp)
        framework.check_eager(fn.__name__)  # under jax.jit: the usual TracedCallError
        for name, x in given.items():
            if x is not None:
                kwargs[name] = framework.to_host(x)
        seed = kwargs.get("seed")
        if isinstance(seed, backends.RandomSource):  # continue the caller's stream
            kwargs["seed"] = HostDraws(backends.random_source(seed, xp=A.xp, device=A.device))
        elif "seed" in _keywords(fn):
            kwargs["seed"] = framework.host_generator(seed)
        result = fn(host, *args, **kwargs)
        keep = set(host_outputs(kwargs))
        back = {}
        for name in outputs:
            value = getattr(result, name)
            if name not in keep and isinstance(value, np.ndarray):
                back[name] = framework.from_host(value, dtype=A.dtype, device=A.device)
        if not back:
            return result
        if dataclasses.is_dataclass(result):
            return dataclasses.replace(result, **back)
        return result._replace(**back)

    return wrapper


@functools.cache
def _keywords(fn: Callable[..., Any]) -> frozenset[str]:
    import inspect

    return frozenset(inspect.signature(fn).parameters)
