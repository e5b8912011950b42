"""Extremal eigenpairs of a symmetric operator: thick-restart (block) Lanczos and power iteration."""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np

from .. import backends
from .._warnings import ConvergenceWarning
from ..backends import Array, Seed
from ..linop import LinearOperator, aslinearoperator
from ._lanczos import _check_square_symmetric, check_symmetric_numerically

WHICH_CHOICES = ("LA", "SA", "LM", "BE")
METHOD_CHOICES = ("auto", "lanczos", "block", "power")


class EigshResult(NamedTuple):
    """Extremal eigenpairs with the evidence to judge them.

    Attributes
    ----------
    eigenvalues : numpy.ndarray, shape (k,)
        Most wanted first: descending for ``"LA"``, ascending for ``"SA"``,
        descending magnitude for ``"LM"``, ascending for ``"BE"``.
    eigenvectors : array, shape (n, k), or None
        Orthonormal Ritz vectors on the operator's backend (None when not asked for).
    residual_norms : numpy.ndarray, shape (k,)
        ``‖A xᵢ − λᵢ xᵢ‖`` of each pair (from the Krylov relation, which full
        re-orthogonalization keeps exact to working precision).
    converged : numpy.ndarray of bool, shape (k,)
        ``residual_norms ≤ tol · max(|λᵢ|, ε^{1/3} ‖A‖)``.
    num_matvecs : int
        Operator products spent (a block of b vectors counts b).
    method : str
        The method that ran.
    num_restarts : int
        Thick restarts (Lanczos/block) or deflation rounds (power).
    which : str
        The part of the spectrum asked for.
    """

    eigenvalues: np.ndarray
    eigenvectors: Array | None
    residual_norms: np.ndarray
    converged: np.ndarray
    num_matvecs: int
    method: str
    num_restarts: int
    which: str


def _ranking(theta: np.ndarray, which: str) -> np.ndarray:
    """Indices of ``theta`` from most to least wanted."""
    if which == "LA":
        return np.argsort(-theta, kind="stable")
    if which == "SA":
        return np.argsort(theta, kind="stable")
    if which == "LM":
        return np.argsort(-np.abs(theta), kind="stable")
    asc = np.argsort(theta, kind="stable")  # BE: alternate ends, the high end first (as ARPACK)
    order = np.empty_like(asc)
    order[0::2] = asc[::-1][: (asc.size + 1) // 2]
    order[1::2] = asc[: asc.size // 2]
    return order


def _output_order(values: np.ndarray, which: str) -> np.ndarray:
    if which == "LA":
        return np.argsort(-values, kind="stable")
    if which == "LM":
        return np.argsort(-np.abs(values), kind="stable")
    return np.argsort(values, kind="stable")


def _threshold(theta: np.ndarray, tol: float, eps: float, anorm: float) -> np.ndarray:
    # Relative test ‖r‖ ≤ tol |θ|, floored at tol·ε^{1/3}‖A‖ so that θ ≈ 0 (a null space)
    # can converge: the floor stays above the ~ε‖A‖ a residual can reach in either dtype.
    return tol * np.maximum(np.abs(theta), eps ** (1 / 3) * anorm)


def _orthonormalize_against(xp: Any, w: Array, basis: Array | None, tol: float) -> tuple[Array, np.ndarray, np.ndarray]:
    """QR of ``w`` (n, b) after CGS2 against ``basis``; returns (Q, R host, rank-deficient mask)."""
    if basis is not None:
        for _ in range(2):
            w = w - basis @ (basis.T @ w)
    if w.shape[1] == 1:
        r = xp.linalg.vector_norm(w[:, 0])
        r_host = backends.to_numpy(r).astype(np.float64).reshape(1, 1)
        q = w / (r if r_host[0, 0] > tol else xp.ones_like(r))
    else:
        q, r = xp.linalg.qr(w)
        r_host = backends.to_numpy(r).astype(np.float64)
    deficient = np.abs(np.diag(r_host)) <= tol
    return q, r_host, deficient


def _fresh_block(op: LinearOperator, rng: backends.RandomSource, basis: Array, q: Array, mask: np.ndarray) -> Array:
    """Replace the columns of ``q`` flagged in ``mask`` by random vectors orthogonal to ``basis`` and ``q``."""
    xp = op.xp
    cols = []
    for i in range(q.shape[1]):
        if not mask[i]:
            cols.append(q[:, i])
            continue
        z = rng.normal((op.shape[0], 1), op.dtype)
        current = xp.concat([basis, xp.stack(cols, axis=1)], axis=1) if cols else basis
        for _ in range(2):
            z = z - current @ (current.T @ z)
        cols.append(z[:, 0] / xp.linalg.vector_norm(z))
    return xp.stack(cols, axis=1)


def _dense_eigsh(op: LinearOperator, k: int, which: str, want_vectors: bool) -> EigshResult:
    """Small operators (n ≤ basis size): form the matrix with n products and call ``eigh``."""
    dense = backends.to_numpy(op.to_dense()).astype(np.float64)
    theta, s = np.linalg.eigh((dense + dense.T) / 2)
    keep = _ranking(theta, which)[:k]
    keep = keep[_output_order(theta[keep], which)]
    vectors = None
    if want_vectors:
        vectors = backends.from_numpy(s[:, keep], xp=op.xp, dtype=op.dtype, device=op.device)
    resid = np.linalg.norm(dense @ s[:, keep] - s[:, keep] * theta[keep], axis=0)
    return EigshResult(theta[keep], vectors, resid, np.ones(k, dtype=bool), op.shape[0], "dense", 0, which)


def _thick_restart(
    op: LinearOperator,
    k: int,
    which: str,
    tol: float,
    max_matvecs: int,
    ncv: int,
    block: int,
    rng: backends.RandomSource,
    v0: Array | None,
    want_vectors: bool,
    method: str,
) -> EigshResult:
    xp = op.xp
    n = op.shape[0]
    eps = backends.finfo_eps(xp, op.dtype)
    static = backends.prefers_static_shapes(xp)
    cap = ncv + block
    basis = xp.zeros((n, cap), dtype=op.dtype, device=op.device)
    h = np.zeros((cap, cap))
    start = rng.normal((n, block), op.dtype) if v0 is None else v0
    q, _, deficient = _orthonormalize_against(xp, start, None, 0.0)
    basis = backends.set_columns(basis, 0, q)
    j, nv, count, restarts, anorm = 0, block, 0, 0, 0.0
    theta = s = resid = wanted = None

    while True:
        w = op.matmat(xp.asarray(basis[:, j : j + block]))
        count += block
        # Columns past nv are zero; with JAX the whole basis is used so shapes stay fixed.
        current = basis if static else basis[:, :nv]
        coef = current.T @ w
        w = w - current @ coef
        coef2 = current.T @ w
        w = w - current @ coef2
        hcol = backends.to_numpy(coef + coef2).astype(np.float64)[:nv]  # (nv, block) to the host
        if not np.all(np.isfinite(hcol)):
            raise FloatingPointError(f"eigsh: the operator product returned NaN or Inf (after {count} products)")
        h[:nv, j : j + block] = hcol
        h[j : j + block, :nv] = hcol.T
        anorm = max(anorm, float(np.max(np.abs(hcol).sum(axis=0))))
        bd_tol = 4.0 * eps**0.75 * max(anorm, np.finfo(np.float64).tiny)  # as in run_recurrence
        q, r, deficient = _orthonormalize_against(xp, w, None, bd_tol)
        if deficient.any():  # an invariant subspace: continue from fresh directions
            r[deficient, :] = 0.0
            q = _fresh_block(op, rng, current, q, deficient)
        basis = backends.set_columns(basis, nv, q)
        h[nv : nv + block, j : j + block] = r
        h[j : j + block, nv : nv + block] = r.T
        j, nv = j + block, nv + block

        if j >= k:
            sym = (h[:j, :j] + h[:j, :j].T) / 2
            theta, s = np.linalg.eigh(sym)
            rank = _ranking(theta, which)
            wanted = rank[:k]
            resid = np.linalg.norm(h[j : j + block, :j] @ s[:, wanted], axis=0)
            done = bool(np.all(resid <= _threshold(theta[wanted], tol, eps, anorm)))
            if done or count + block > max_matvecs:
                break
            if nv + block > cap:  # the basis is full: thick restart with the best l Ritz vectors
                # Keep about half the basis (Wu & Simon), leaving room for at least one new block.
                keep_count = min(j - block, max(k + (j - k) // 2, k + 1))
                keep = rank[:keep_count]
                s_keep = backends.from_numpy(s[:, keep], xp=xp, dtype=op.dtype, device=op.device)
                kept = basis[:, :j] @ s_keep
                newest = xp.asarray(basis[:, j : j + block], copy=True)
                coupling = h[j : j + block, :j] @ s[:, keep]
                basis = backends.set_columns(basis, 0, kept)
                basis = backends.set_columns(basis, keep_count, newest)
                if static:  # the fixed-shape products read every column: clear the stale ones
                    tail = xp.zeros((n, cap - keep_count - block), dtype=op.dtype, device=op.device)
                    basis = backends.set_columns(basis, keep_count + block, tail)
                h[:] = 0.0
                h[:keep_count, :keep_count] = np.diag(theta[keep])
                h[keep_count : keep_count + block, :keep_count] = coupling
                h[:keep_count, keep_count : keep_count + block] = coupling.T
                j, nv = keep_count, keep_count + block
                restarts += 1
        elif count + block > max_matvecs:
            break

    if theta is None:  # budget too small to reach k vectors
        raise ValueError(f"max_matvecs={max_matvecs} is too small to build {k} Ritz vectors")
    threshold = _threshold(theta[wanted], tol, eps, anorm)
    converged = resid <= threshold
    if not converged.all():
        warnings.warn(
            f"eigsh ({method}, which={which!r}): {int((~converged).sum())} of {k} eigenpairs did not reach "
            f"tol={tol:.2g} within max_matvecs={max_matvecs}; see result.converged and result.residual_norms",
            ConvergenceWarning,
            stacklevel=3,
        )
    order = _output_order(theta[wanted], which)
    wanted, resid, converged = wanted[order], resid[order], converged[order]
    vectors = None
    if want_vectors:
        vectors = basis[:, :j] @ backends.from_numpy(s[:, wanted], xp=xp, dtype=op.dtype, device=op.device)
    return EigshResult(theta[wanted], vectors, resid, converged, count, method, restarts, which)


def _power(
    op: LinearOperator,
    k: int,
    which: str,
    tol: float,
    max_matvecs: int,
    rng: backends.RandomSource,
    want_vectors: bool,
) -> EigshResult:
    """Power iteration with deflation (PyHessian's method), kept as a baseline.

    Pair i iterates with ``(I − UUᵀ) A (I − UUᵀ)`` for the i − 1 vectors U found
    before; its reported residual is that of this deflated operator, which
    differs from the residual with A by about ``|λ₁| ‖u₁ − u₁*‖``.
    """
    xp = op.xp
    n = op.shape[0]
    eps = backends.finfo_eps(xp, op.dtype)
    found: list[Array] = []
    values: list[float] = []
    resids: list[float] = []
    conv: list[bool] = []
    count = 0
    shift = 0.0
    sign = 1.0
    if which in ("LA", "SA"):
        # Power iteration finds the largest magnitude; shift so the wanted end is largest:
        # B = sign·A + shift·I with shift ≥ ‖A‖ from a first (cheap, loose) power estimate.
        est = _power(op, 1, "LM", max(tol, 1e-2), max(1, max_matvecs // 10), rng, False)
        count += est.num_matvecs
        shift = 1.05 * abs(float(est.eigenvalues[0]))
        sign = 1.0 if which == "LA" else -1.0
    per_pair = max(1, (max_matvecs - count) // k)
    for _ in range(k):
        v = rng.normal((n, 1), op.dtype)
        basis = xp.concat(found, axis=1) if found else None
        theta, res, ok = 0.0, np.inf, False
        for _ in range(per_pair):
            if basis is not None:  # deflation: stay orthogonal to the pairs already found
                v = v - basis @ (basis.T @ v)
            v = v / xp.linalg.vector_norm(v)
            w = sign * op.matmat(v) + shift * v
            count += 1
            if basis is not None:  # iterate with (I − UUᵀ) B (I − UUᵀ), so errors in U do not stall it
                w = w - basis @ (basis.T @ w)
            rayleigh = xp.sum(v * w)
            # ‖w − θv‖ directly: sqrt(‖w‖² − θ²) would cancel below √ε relative.
            stats = xp.stack([rayleigh, xp.linalg.vector_norm(w - rayleigh * v)])
            stats = backends.to_numpy(stats).astype(np.float64)
            if not np.all(np.isfinite(stats)):
                raise FloatingPointError(f"eigsh (power): the operator product returned NaN or Inf (product {count})")
            theta, res = float(stats[0]), float(stats[1])
            lam = sign * (theta - shift)
            if res <= tol * max(abs(lam), eps ** (1 / 3) * abs(theta)):
                ok = True
                break
            v = w
        found.append(v / xp.linalg.vector_norm(v))
        values.append(sign * (theta - shift))
        resids.append(res)
        conv.append(ok)
    vals = np.array(values)
    order = _output_order(vals, which)
    converged = np.array(conv)[order]
    if not converged.all():
        warnings.warn(
            f"eigsh (power, which={which!r}): {int((~converged).sum())} of {k} eigenpairs did not reach "
            f"tol={tol:.2g} within max_matvecs={max_matvecs}",
            ConvergenceWarning,
            stacklevel=3,
        )
    vectors = None
    if want_vectors:
        vectors = xp.concat([found[i] for i in order], axis=1)
    return EigshResult(vals[order], vectors, np.array(resids)[order], converged, count, "power", k, which)


def eigsh(
    A: Any,
    /,
    k: int = 6,
    *,
    which: str = "LA",
    tol: float | None = None,
    max_matvecs: int | None = None,
    method: str = "auto",
    block_size: int | None = None,
    ncv: int | None = None,
    seed: Seed = None,
    v0: Array | None = None,
    return_eigenvectors: bool = True,
    check_symmetric: bool = False,
) -> EigshResult:
    """The ``k`` extremal eigenpairs of a symmetric operator.

    Finds ``A xᵢ = λᵢ xᵢ`` for the ``k`` largest (``which="LA"``), smallest
    (``"SA"``), largest-magnitude (``"LM"``) eigenvalues, or both ends
    (``"BE"``: ``⌈k/2⌉`` from the top, ``⌊k/2⌋`` from the bottom). A pair is
    converged when ``‖A x − λ x‖ ≤ tol · max(|λ|, ε^{1/3}‖A‖)``; all k must be.

    Methods
    -------
    ``"lanczos"`` (``"auto"``)
        Thick-restart Lanczos (Wu & Simon 2000) with full re-orthogonalization:
        the basis holds at most ``ncv + 1`` vectors of length n
        (``ncv = max(2k + 1, 20, 10b)`` by default, rounded up to whole blocks), plus ``l ≤ ncv`` during a restart,
        so memory stays at about ``2 · ncv · n`` numbers however long it runs.
        Convergence is checked after every product (on the host, a ``j × j``
        eigenproblem), so it stops as soon as the k pairs are good.
    ``"block"``
        The same with blocks of ``b = block_size`` vectors (default 4):
        one ``A.matmat`` per block — the fast path when a product of b vectors
        costs less than b products (a network's Hessian with a reused graph, a GPU).
    ``"power"``
        Power iteration with deflation, PyHessian's method, one pair at a time;
        kept as a baseline (``"BE"`` unsupported).

    Breakdown (an invariant subspace) continues from a fresh random direction, so
    repeated eigenvalues are found with their multiplicity. Operators with
    ``n ≤ ncv + b`` are formed densely (n products) and solved exactly.

    Parameters
    ----------
    A
        Symmetric n×n operator, or anything :func:`eigenscope.aslinearoperator` accepts.
    k
        Number of eigenpairs, ``1 ≤ k < n``.
    tol
        Relative residual tolerance; default ``√ε`` of the dtype (1.5e-8 in
        float64, 3.5e-4 in float32). Eigenvalue errors are about ``‖r‖²/gap``.
    max_matvecs
        Budget of products; default ``max(50 · ncv, 1000)``. When spent, the
        result says which pairs converged and a ``ConvergenceWarning`` is emitted.
    seed, v0
        Random start (int, NumPy/torch generator, JAX key) or an explicit
        start vector (n,) or block (n, b).
    check_symmetric
        Spend 2 products verifying ``uᵀAv = vᵀAu`` (raise ``ValueError`` if not).

    Returns
    -------
    EigshResult
        Cost: typically a small multiple of ``k`` products for well-separated
        extremal eigenvalues; see ``result.num_matvecs``.
    """
    op = aslinearoperator(A)
    _check_square_symmetric(op, "eigsh")
    n = op.shape[0]
    if which not in WHICH_CHOICES:
        raise ValueError(f"which must be one of {WHICH_CHOICES}, got {which!r}")
    if method not in METHOD_CHOICES:
        raise ValueError(f"method must be one of {METHOD_CHOICES}, got {method!r}")
    if not 1 <= k < n:
        raise ValueError(f"k must satisfy 1 <= k < n = {n}, got k={k}")
    eps = backends.finfo_eps(op.xp, op.dtype)
    tol = float(np.sqrt(eps)) if tol is None else float(tol)
    if tol <= 0:
        raise ValueError(f"tol must be positive, got {tol}")
    rng = backends.random_source(seed, xp=op.xp, device=op.device)
    extra = 0
    if check_symmetric:
        check_symmetric_numerically(op, rng._state if op.backend != "jax" else None)
        extra = 2
    if method == "auto":
        method = "lanczos"
    if method == "power":
        if which == "BE":
            raise ValueError("method='power' supports which='LA', 'SA' or 'LM', not 'BE'")
        budget = max_matvecs if max_matvecs is not None else max(1000, 200 * k)
        result = _power(op, k, which, tol, budget, rng, return_eigenvectors)
        return result._replace(num_matvecs=result.num_matvecs + extra)

    block = 1 if method == "lanczos" else (block_size or 4)
    if block < 1:
        raise ValueError(f"block_size must be positive, got {block}")
    ncv = max(2 * k + 1, 20, 10 * block) if ncv is None else int(ncv)
    if ncv < k + 2 * block:
        raise ValueError(f"ncv must be at least k + 2 * block_size = {k + 2 * block}, got {ncv}")
    ncv = -(-ncv // block) * block  # whole blocks
    budget = max(50 * ncv, 1000) if max_matvecs is None else int(max_matvecs)
    if v0 is not None:
        if v0.ndim == 1:
            op._check_operand(v0, 1, n, "eigsh v0")
            v0 = v0[:, None]
        else:
            op._check_operand(v0, 2, n, "eigsh v0")
        if v0.shape[1] != block:
            raise ValueError(f"v0 must have {block} column(s) for block size {block}, got {v0.shape[1]}")
    if n <= ncv + block:
        result = _dense_eigsh(op, k, which, return_eigenvectors)
    else:
        result = _thick_restart(op, k, which, tol, budget, ncv, block, rng, v0, return_eigenvectors, method)
    return result._replace(num_matvecs=result.num_matvecs + extra)
