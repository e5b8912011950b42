"""Array namespaces, dtypes and devices of the supported backends.

Everything above this package talks to arrays through the Array API namespace returned
here, and to the framework object :func:`framework_of` returns for what the standard lacks.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from ._frameworks import Array, dtype_name, framework_of

SUPPORTED_DTYPE_NAMES = ("float32", "float64")


def namespace(*arrays: Array) -> ModuleType:
    """Return the Array API namespace shared by ``arrays``.

    Raises
    ------
    TypeError
        If the arrays come from different backends or one is not an array.
    """
    try:
        return array_api_compat.array_namespace(*arrays)
    except TypeError as exc:
        kinds = ", ".join(sorted({type(a).__module__ + "." + type(a).__name__ for a in arrays}))
        raise TypeError(f"expected arrays of one supported backend, got {kinds}: {exc}") from None


def backend_name(xp: ModuleType) -> str:
    """Short name of the backend behind namespace ``xp``.

    One of ``"numpy"``, ``"torch"``, ``"jax"``, ``"cupy"``, ``"array_api_strict"``
    (or the namespace's module name for any other standard-conforming library).
    For messages; code asks :func:`framework_of` for behaviour instead of comparing names.
    """
    return framework_of(xp).name


def check_eager(xp: ModuleType, who: str) -> None:
    """Raise :class:`TracedCallError` when ``who`` (an algorithm, by name) runs while a compiler
    traces it (``jax.jit``): a host-driven loop cannot be traced. Free for eager frameworks."""
    framework_of(xp).check_eager(who)


def device(x: Array) -> Any:
    """The device ``x`` lives on, as ``array_api_compat.device`` reports it."""
    return array_api_compat.device(x)


def check_dtype(dtype: Any, *, what: str = "operator") -> Any:
    """Return ``dtype`` if it is float32 or float64; raise ``TypeError`` otherwise.

    eigenscope serves real symmetric matrices; half precision loses the
    orthogonality Lanczos needs and complex dtypes are out of scope.
    """
    if isinstance(dtype, type):  # ``numpy.float64`` the scalar type, not yet a dtype
        dtype = np.dtype(dtype)
    name = dtype_name(dtype)
    if name not in SUPPORTED_DTYPE_NAMES:
        raise TypeError(
            f"{what} dtype must be float32 or float64, got {name}; "
            "cast the input first (half precision cannot keep a Krylov basis orthogonal)"
        )
    return dtype


def finfo_eps(xp: ModuleType, dtype: Any) -> float:
    """Machine epsilon of ``dtype`` as a Python float."""
    return float(xp.finfo(dtype).eps)


def all_finite(x: Array) -> bool:
    """Whether every entry of ``x`` is finite, with two scalars to the host.

    ``min`` and ``max`` propagate NaN and reach ±Inf on every backend, so both are finite
    exactly when all entries are: two reductions, without the n-length boolean array of
    ``all(isfinite(x))`` (which cost 15 % of a Hessian-vector product at 1.1·10⁷ parameters).
    """
    if math.prod(x.shape) == 0:
        return True
    xp = array_api_compat.array_namespace(x)
    ends = to_numpy(xp.stack([xp.min(x), xp.max(x)]))
    return bool(np.all(np.isfinite(ends)))


def to_numpy(x: Array) -> np.ndarray:
    """Copy a (small) array of any backend to the host as a NumPy array.

    Used for the few scalars and small matrices that cross to the host per
    step; never call it on a length-n vector inside a loop.
    """
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (float, int, np.generic)):
        return np.asarray(x)
    try:
        xp = array_api_compat.array_namespace(x)
    except TypeError:
        return np.asarray(x)
    return framework_of(xp).to_host(x)


def from_numpy(a: np.ndarray, *, xp: ModuleType, dtype: Any, device: Any) -> Array:
    """Move a host NumPy array to backend ``xp`` with the given dtype and device."""
    return framework_of(xp).from_host(a, dtype=dtype, device=device)


def resolve_namespace(xp: Any) -> ModuleType:
    """Turn a user-given array module (``numpy``, ``torch``, ``jax.numpy``, ``cupy``,
    ``array_api_strict``) into the Array API namespace eigenscope uses for it."""
    try:
        return array_api_compat.array_namespace(xp.zeros(1))
    except (AttributeError, TypeError) as exc:
        raise TypeError(f"xp must be an array module such as numpy or torch, got {xp!r}") from exc


def namespace_of_dtype(dtype: Any) -> ModuleType:
    """The array module a dtype belongs to where the dtype says so: torch for a
    ``torch.dtype``, NumPy otherwise (CuPy and JAX share NumPy's dtypes)."""
    if type(dtype).__module__.startswith("torch"):
        import torch  # the dtype is torch's, so torch is importable

        return torch
    return np


def default_device(xp: ModuleType) -> Any:
    """The device new arrays of ``xp`` land on by default."""
    return device(xp.zeros(1))


def same_device(a: Any, b: Any) -> bool:
    """Whether two device objects name the same device (``cuda`` and ``cuda:0`` alike)."""
    if a == b:
        return True
    sa, sb = str(a), str(b)
    return sa == sb or sa.removesuffix(":0") == sb.removesuffix(":0")


def prefers_static_shapes(xp: ModuleType) -> bool:
    """Whether every new array shape costs a compilation (JAX): loops then keep shapes fixed."""
    return framework_of(xp).static_shapes


def has_float64(xp: ModuleType) -> bool:
    """Whether ``xp`` computes in float64 (JAX only with ``jax_enable_x64``; asking it for
    float64 otherwise returns float32 with a warning)."""
    return framework_of(xp).has_float64()
