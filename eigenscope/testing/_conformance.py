"""Conformance checks any operator (ours or a user's) can be run through."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backends
from ..linop import aslinearoperator
from ._tolerance import tolerance


class OperatorCheckError(AssertionError):
    """An operator does not behave as it declares."""


def _fail(msg: str) -> None:
    raise OperatorCheckError(msg)


def _product(f: Any, x: Any) -> Any:
    """A product; the operator's own result checks (shape, dtype, device, backend) become check failures."""
    try:
        return f(x)
    except (TypeError, ValueError) as exc:
        raise OperatorCheckError(str(exc)) from exc


def check_operator(op: Any, *, seed: int = 0, num_vectors: int = 3, rtol: float | None = None) -> None:
    """Check that ``op`` behaves as it declares; raise :class:`OperatorCheckError` if not.

    Checks, with ``num_vectors`` random vectors (about ``4 · num_vectors`` matvecs):

    - ``matvec`` returns an array of the declared backend, dtype, device and length;
    - ``matmat`` agrees with ``matvec`` column by column;
    - linearity: ``A(a u + b v) = a Au + b Av``;
    - symmetry when declared: ``uᵀ(Av) = vᵀ(Au)``;
    - every product is finite.

    ``rtol=None`` uses a tolerance of ``50 ε √n`` for the operator's dtype.
    """
    op = aslinearoperator(op)
    xp = op.xp
    m, n = op.shape
    rng = backends.random_source(seed, xp=xp, device=op.device)
    x = rng.normal((n, num_vectors), op.dtype)
    rtol = tolerance(op.dtype, n=n) if rtol is None else rtol

    cols = []
    for j in range(num_vectors):
        y = _product(op.matvec, x[:, j])
        if backends.namespace(y) is not xp:
            _fail(f"matvec returned a {type(y).__name__}, the operator declares backend {op.backend}")
        if tuple(y.shape) != (m,):
            _fail(f"matvec returned shape {tuple(y.shape)}, expected ({m},)")
        if y.dtype != op.dtype:
            _fail(f"matvec returned dtype {backends.dtype_name(y.dtype)}, declared {backends.dtype_name(op.dtype)}")
        if not backends.same_device(backends.device(y), op.device):
            _fail(f"matvec returned an array on {backends.device(y)}, declared {op.device}")
        cols.append(backends.to_numpy(y).astype(np.float64))
    ys = np.stack(cols, axis=1)
    if not np.all(np.isfinite(ys)):
        _fail("matvec returned NaN or Inf")
    scale = max(float(np.max(np.abs(ys))), np.finfo(np.float64).tiny)

    block = backends.to_numpy(_product(op.matmat, x)).astype(np.float64)
    if block.shape != (m, num_vectors):
        _fail(f"matmat returned shape {block.shape}, expected {(m, num_vectors)}")
    err = float(np.max(np.abs(block - ys)))
    if err > rtol * scale:
        _fail(f"matmat differs from column-wise matvec by {err:.3g} (tolerance {rtol * scale:.3g})")

    combo = _product(op.matvec, 2.0 * x[:, 0] - 0.5 * x[:, 1 % num_vectors])
    expect = 2.0 * ys[:, 0] - 0.5 * ys[:, 1 % num_vectors]
    err = float(np.max(np.abs(backends.to_numpy(combo) - expect)))
    if err > 4 * rtol * scale:
        _fail(f"the operator is not linear: A(2u - v/2) differs from 2Au - Av/2 by {err:.3g}")

    if op.symmetric:
        xs = backends.to_numpy(x).astype(np.float64)
        gram = xs.T @ ys  # gram[i, j] = x_iᵀ A x_j
        err = float(np.max(np.abs(gram - gram.T)))
        bound = rtol * scale * float(np.max(np.linalg.norm(xs, axis=0))) * 4
        if err > bound:
            _fail(f"declared symmetric but uᵀAv - vᵀAu = {err:.3g} (tolerance {bound:.3g})")
