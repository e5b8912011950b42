"""Checks on what goes into and comes out of an operator: shapes, operands, results.

They read metadata only (backend, shape, dtype, device), so every product can afford
them; a mismatch raises naming the operator, what was expected and what came, instead of
being broadcast or cast into a plausible wrong answer.
"""

from __future__ import annotations

import numbers
from typing import Any

from .. import backends
from ..backends import Array

DECLARED_NONSYMMETRIC = "it is declared non-symmetric (symmetric=False); symmetrize it, e.g. (A + A.T) / 2"


def check_shape(shape: Any, owner: str = "operator") -> tuple[int, int]:
    """``shape`` as a pair of Python ints ``(m, n)`` with ``m, n ≥ 1``; raise ``ValueError`` naming ``owner``.

    An empty operator has no spectrum and no nonzero vector to multiply, so it is
    refused here rather than failing later inside an algorithm.
    """
    if len(shape) != 2 or any(not isinstance(s, numbers.Integral) or s < 0 for s in shape):
        raise ValueError(f"shape must be a pair of non-negative ints, got {shape!r}")
    m, n = int(shape[0]), int(shape[1])
    if m < 1 or n < 1:
        need = "n ≥ 1" if m == n else "m ≥ 1 and n ≥ 1"
        raise ValueError(f"an operator needs {need}, got shape {(m, n)} ({owner})")
    return m, n


def check_operand(op: Any, x: Array, *, ndim: int, length: int, what: str) -> None:
    """Raise unless ``x`` is a ``ndim``-d array of ``op``'s backend, dtype and device with
    ``length`` rows.

    ``TypeError`` for the wrong backend, dtype or device (eigenscope never casts between
    them), ``ValueError`` for the wrong shape; the message starts with ``what`` (say
    ``"eigsh v0"``). Operators may extend the check with what they know of the cause
    (an adapter names a model moved to another device).
    """
    hook = getattr(op, "_check_operand", None)
    if hook is not None:
        hook(x, ndim, length, what)
    else:
        operand_problem(op, x, ndim=ndim, length=length, what=what)


def operand_problem(op: Any, x: Array, *, ndim: int, length: int, what: str) -> None:
    """The checks of :func:`check_operand` on any object with ``xp``, ``dtype``, ``device``, ``shape``."""
    name = backends.backend_name(op.xp)
    try:
        xp = backends.namespace(x)
    except TypeError:
        raise TypeError(f"{what} expected a {name} array, got {type(x).__module__}.{type(x).__name__}") from None
    if xp is not op.xp:
        raise TypeError(
            f"{what} expected a {name} array, got a {backends.backend_name(xp)} array; "
            "convert it explicitly (eigenscope never casts between backends)"
        )
    if x.ndim != ndim:
        shape = "(n,)" if ndim == 1 else "(n, b)"
        raise ValueError(f"{what} expected a {ndim}-d array of shape {shape}, got shape {tuple(x.shape)}")
    if x.shape[0] != length:
        raise ValueError(f"{what} expected {length} rows (the operator is {tuple(op.shape)}), got {x.shape[0]}")
    mismatch = placement_mismatch(op, x)
    if mismatch == "dtype":
        raise TypeError(
            f"{what} expected dtype {backends.dtype_name(op.dtype)}, got {backends.dtype_name(x.dtype)}; cast it first"
        )
    if mismatch == "device":
        raise TypeError(f"{what} expected an array on device {op.device}, got one on {backends.device(x)}")


def placement_mismatch(op: Any, x: Any) -> str | None:
    """``"dtype"`` or ``"device"`` where array ``x`` differs from the operator's, else None."""
    if x.dtype != op.dtype:
        return "dtype"
    if not backends.same_device(backends.device(x), op.device):
        return "device"
    return None


def check_result(op: Any, y: Any, shape: tuple[int, ...], what: str) -> Array:
    """Return ``y`` if it is an array of ``op``'s backend, dtype and device of ``shape``;
    raise naming the operator, what was expected and what came otherwise."""
    try:
        same_backend = backends.namespace(y) is op.xp
    except TypeError:
        same_backend = False
    name = backends.backend_name(op.xp)
    if not same_backend:
        raise TypeError(f"{what} of {op!r} returned {_kind(y)}, expected a {name} array")
    if tuple(y.shape) != shape:
        raise ValueError(f"{what} of {op!r} returned shape {tuple(y.shape)}, expected {shape}")
    mismatch = placement_mismatch(op, y)
    if mismatch == "dtype":
        raise TypeError(
            f"{what} of {op!r} returned dtype {backends.dtype_name(y.dtype)}, expected {backends.dtype_name(op.dtype)}"
        )
    if mismatch == "device":
        raise TypeError(
            f"{what} of {op!r} returned an array on device {backends.device(y)}, expected device {op.device}"
        )
    return y


def is_real_scalar(alpha: Any) -> bool:
    """Whether ``alpha`` is a real number (and not a bool): what ``*`` scales an operator by."""
    return isinstance(alpha, numbers.Real) and not isinstance(alpha, bool)


def _kind(y: Any) -> str:
    """What a product returned, for messages: ``"a torch array"``, ``"a builtins.list"``."""
    try:
        return f"a {backends.backend_name(backends.namespace(y))} array"
    except TypeError:
        return f"a {type(y).__module__}.{type(y).__name__}"
