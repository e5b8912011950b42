"""Argument checks shared by the algorithms: one message style, naming the argument and its range."""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np

from .. import backends
from .._warnings import EigenscopeWarning
from ..backends import Array
from ..linop import LinearOperator, aslinearoperator, check_operand


def count(value: Any, name: str, who: str, *, minimum: int = 1, maximum: int | None = None, hint: str = "") -> int:
    """``value`` as a Python int in ``[minimum, maximum]``.

    Accepts Python and NumPy integers only: ``True``, ``2.5``, ``2.0`` and
    ``"3"`` are refused (a float count is almost always a bug upstream).
    ``hint`` is appended to the range in messages (say, why the minimum is 3).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{who}: {name} must be an integer{_range(minimum, maximum)}{hint}, got {value!r} ({type(value).__name__})"
        )
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{who}: {name} must be an integer{_range(minimum, maximum)}{hint}, got {value}")
    return value


def optional_count(
    value: Any, name: str, who: str, *, minimum: int = 1, maximum: int | None = None, hint: str = ""
) -> int | None:
    """:func:`count`, letting ``None`` through."""
    return None if value is None else count(value, name, who, minimum=minimum, maximum=maximum, hint=hint)


def _range(minimum: int, maximum: int | None) -> str:
    if maximum is None:
        return f" >= {minimum}"
    return f" in [{minimum}, {maximum}]"


def positive_tolerance(value: Any, name: str, who: str) -> float:
    """``value`` as a float that is finite and > 0 (``inf`` would accept anything, ``nan`` nothing)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{who}: {name} must be a finite number > 0, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{who}: {name} must be a finite number > 0, got {value}")
    return value


def optional_tolerance(value: Any, name: str, who: str) -> float | None:
    """``value`` as a finite float ≥ 0, or ``None`` (an ``rtol``/``atol`` of the stochastic estimators)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_, str)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{who}: {name} must be a finite number >= 0, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not value >= 0.0 or math.isinf(value):
        raise ValueError(f"{who}: {name} must be a finite number >= 0, got {value}")
    return value


def choice(value: Any, name: str, choices: tuple[str, ...], who: str) -> str:
    """``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{who}: unknown {name} {value!r}; valid choices are {valid}")
    return value


def square_operator(a: Any, who: str) -> LinearOperator:
    """``a`` as a square :class:`~eigenscope.LinearOperator`, as the stochastic estimators need."""
    op = aslinearoperator(a)
    backends.check_eager(op.xp, who)
    m, n = op.shape
    if m != n:
        raise ValueError(f"{who} needs a square operator, got shape {op.shape}")
    if n < 1:
        raise ValueError(f"{who} needs a non-empty operator, got shape {op.shape}")
    return op


def symmetric_operator(a: Any, who: str) -> LinearOperator:
    """``a`` as a square operator declared symmetric, as the Krylov eigensolvers need."""
    op = aslinearoperator(a)
    backends.check_eager(op.xp, who)
    if op.shape[0] != op.shape[1]:
        raise ValueError(f"{who} needs a square operator, got shape {op.shape}")
    if not op.symmetric:
        reason = getattr(op, "nonsymmetric_reason", None) or (
            "it is declared non-symmetric (symmetric=False); symmetrize it, e.g. (A + A.T) / 2"
        )
        raise ValueError(f"{who} needs a symmetric operator, but {reason}")
    return op


def symmetric_numerically(op: LinearOperator, rng: backends.RandomSource) -> None:
    """Raise ``ValueError`` unless ``uᵀ(Av) = vᵀ(Au)`` for two random vectors (2 matvecs).

    ``rng`` should be a stream of its own (``parent.spawn()``), so the check leaves the
    caller's draws as they are without it.
    """
    uv = rng.normal((op.shape[0], 2), op.dtype)
    auv = backends.to_numpy(op.matmat(uv)).astype(np.float64)
    uvh = backends.to_numpy(uv).astype(np.float64)
    g = uvh.T @ auv
    scale = float(np.linalg.norm(auv) * np.linalg.norm(uvh))
    tol = 100 * backends.finfo_eps(op.xp, op.dtype) * np.sqrt(op.shape[0]) * scale
    if abs(g[0, 1] - g[1, 0]) > tol:
        raise ValueError(
            f"the operator is not symmetric: uᵀAv = {g[0, 1]:.6g} but vᵀAu = {g[1, 0]:.6g} "
            f"(tolerance {tol:.2g}); the symmetric eigensolvers would return wrong answers"
        )


def clamp_steps(num_steps: Any, n: int, who: str = "lanczos") -> int:
    """``min(num_steps, n)`` with a warning when clamped (a Krylov space has at most n dimensions)."""
    num_steps = count(num_steps, "num_steps", who)
    if num_steps > n:
        warnings.warn(
            f"num_steps={num_steps} exceeds the dimension n={n}; clamped to {n}",
            EigenscopeWarning,
            stacklevel=3,
        )
        return n
    return num_steps


def start_block(op: LinearOperator, v: Array, name: str, who: str) -> Array:
    """Check a user-given start vector (n,) or block (n, b): backend, dtype, device, finite, nonzero.

    Returns it as an (n, b) block. One reduction crosses to the host.
    """
    if getattr(v, "ndim", None) == 1:
        check_operand(op, v, ndim=1, length=op.shape[0], what=f"{who} {name}")
        v = v[:, None]
    else:
        check_operand(op, v, ndim=2, length=op.shape[0], what=f"{who} {name}")
    if v.shape[1] < 1:
        raise ValueError(f"{who}: {name} must have at least one column, got shape {tuple(v.shape)}")
    xp = op.xp
    stats = backends.to_numpy(xp.stack([xp.max(xp.abs(v)), xp.min(xp.max(xp.abs(v), axis=0))]))
    if not np.all(np.isfinite(stats)):
        raise ValueError(f"{who}: the start vector {name} has NaN or Inf entries")
    if float(stats[1]) == 0.0:
        raise ValueError(f"{who}: the start vector {name} is zero (a column of it is); give a nonzero one")
    return v


def probe_block(op: LinearOperator, probes: Array | None, who: str, *, adaptive: bool = False) -> None:
    """Check user-given probes (n, b): backend, dtype, device, at least one column.

    ``adaptive``: the caller stops on a tolerance, which needs probes it draws itself.
    """
    if probes is None:
        return
    if adaptive:
        raise ValueError(
            f"{who}: probes= fixes the budget, so it cannot be combined with rtol/atol (adaptive mode draws its own)"
        )
    check_operand(op, probes, ndim=2, length=op.shape[1], what=f"{who} probes")
    if probes.shape[1] < 1:
        raise ValueError(f"{who}: probes must have at least one column, got shape {tuple(probes.shape)}")


def finite_probes(op: LinearOperator, probes: Array, who: str) -> None:
    """Refuse probe vectors with NaN or Inf entries (one reduction to the host)."""
    xp = op.xp
    if not bool(backends.to_numpy(xp.all(xp.isfinite(probes)))):
        raise ValueError(f"{who}: the probes have NaN or Inf entries")
