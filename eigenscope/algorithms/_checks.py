"""Argument checks shared by the algorithms: one message style, naming the argument and its range."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .. import backends
from ..backends import Array
from ..linop import LinearOperator


def count(value: Any, name: str, who: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as a Python int in ``[minimum, maximum]``.

    Accepts Python and NumPy integers only: ``True``, ``2.5``, ``2.0`` and
    ``"3"`` are refused (a float count is almost always a bug upstream).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{who}: {name} must be an integer{_range(minimum, maximum)}, got {value!r} ({type(value).__name__})"
        )
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{who}: {name} must be an integer{_range(minimum, maximum)}, got {value}")
    return value


def optional_count(value: Any, name: str, who: str, *, minimum: int = 1, maximum: int | None = None) -> int | None:
    """:func:`count`, letting ``None`` through."""
    return None if value is None else count(value, name, who, minimum=minimum, maximum=maximum)


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


def choice(value: Any, name: str, choices: tuple[str, ...], who: str) -> str:
    """``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{who}: unknown {name} {value!r}; valid choices are {valid}")
    return value


def start_block(op: LinearOperator, v: Array, name: str, who: str) -> Array:
    """Check a user-given start vector (n,) or block (n, b): backend, dtype, device, finite, nonzero.

    Returns it as an (n, b) block. One reduction crosses to the host.
    """
    if getattr(v, "ndim", None) == 1:
        op._check_operand(v, 1, op.shape[0], f"{who} {name}")
        v = v[:, None]
    else:
        op._check_operand(v, 2, op.shape[0], f"{who} {name}")
    if v.shape[1] < 1:
        raise ValueError(f"{who}: {name} must have at least one column, got shape {tuple(v.shape)}")
    xp = op.xp
    stats = backends.to_numpy(xp.stack([xp.max(xp.abs(v)), xp.min(xp.max(xp.abs(v), axis=0))]))
    if not np.all(np.isfinite(stats)):
        raise ValueError(f"{who}: the start vector {name} has NaN or Inf entries")
    if float(stats[1]) == 0.0:
        raise ValueError(f"{who}: the start vector {name} is zero (a column of it is); give a nonzero one")
    return v


def finite_probes(op: LinearOperator, probes: Array, who: str) -> None:
    """Refuse probe vectors with NaN or Inf entries (one reduction to the host)."""
    xp = op.xp
    if not bool(backends.to_numpy(xp.all(xp.isfinite(probes)))):
        raise ValueError(f"{who}: the probes have NaN or Inf entries")
