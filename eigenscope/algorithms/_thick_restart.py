"""Thick-restart (block) Lanczos with full orthogonalization and locking: the engine of ``eigsh``.

The basis ``Q`` (n × nv, orthonormal, also orthogonal to the locked vectors ``X``)
satisfies ``A Q_j = Q_nv H[:nv, :j] + X C[:, :j]`` for its first j (multiplied)
columns, with ``H = QᵀAQ`` and ``C = XᵀAQ`` recorded as the Gram–Schmidt
coefficients. The Rayleigh–Ritz pairs ``(θ, y = Q_j s)`` of ``H[:j, :j]`` then
have the true residual ``‖A y − θ y‖ = ‖[H[j:nv, :j]; C[:, :j]] s‖`` (to rounding),
which is what is reported and tested: locking changes the operator seen by the
Rayleigh–Ritz step (``(I − XXᵀ) A (I − XXᵀ)``) but never the residual claimed. A
breakdown drops a residual direction whose norm is below the threshold but not zero;
its norm is added back (triangle inequality), so the residual claimed stays an upper bound.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backends
from ..backends import Array
from ._christoffel import StartCertificate
from ._orth import (
    breakdown_tolerance,
    column_norms,
    exhausted_floor,
    fresh_directions,
    orthonormalize_block,
    project_out,
    reorthogonalize,
)
from ._pairs import Pairs, ranking, threshold
from ._scaling import NormalizedProducts


def thick_restart(
    products: NormalizedProducts,
    k: int,
    which: str,
    tol: float,
    max_matvecs: int,
    ncv: int,
    block: int,
    rng: backends.RandomSource,
    *,
    start: Array | None = None,
    locked: Array | None = None,
    anorm: float = 0.0,
) -> Pairs:
    """The k most wanted Ritz pairs of A on the complement of ``locked``, to ``tol``.

    Thick restart (Wu & Simon 2000): the basis holds at most ``ncv + block``
    vectors; when full, it keeps the ``l ≈ (j + k)/2`` best Ritz vectors and
    the newest block. Breakdown (an invariant subspace) continues from fresh
    random directions orthogonal to everything held, so the run can go on to
    other eigenvalues. Stops when every wanted pair meets :func:`threshold`, or
    before ``max_matvecs`` products would be exceeded (pairs then marked not
    converged). Cost: the products of the run; per step a local pass against the last two
    blocks, one Gram–Schmidt pass against the basis and the locked vectors, and a second one
    only where the DGKS test asks (``O(n (nv + L) b)`` flops).

    The basis is stored as rows (``cap × n``): a pass against the first ``nv`` vectors reads
    ``nv · n`` contiguous numbers, and writing a vector is one contiguous copy (stored as
    columns of an ``n × cap`` array, every pass and every write touched all ``cap`` columns'
    cache lines: at n = 10⁷ most of the time outside the products).
    """
    xp = products.xp
    n = products.shape[0]
    dtype, device = products.dtype, products.device
    eps = backends.finfo_eps(xp, dtype)
    static = backends.prefers_static_shapes(xp)
    cap = ncv + block
    n_locked = 0 if locked is None else int(locked.shape[1])
    # The basis Q, one vector per row; rows are read only once written (but with JAX, whose
    # fixed-shape products read them all): no pass to zero cap·n numbers first.
    rows = (xp.zeros if static else xp.empty)((cap, n), dtype=dtype, device=device)
    h = np.zeros((cap, cap))
    coupling = np.zeros((n_locked, cap))  # C = Xᵀ A Q for the multiplied columns
    # ‖w‖ of residual directions dropped at a breakdown (below the threshold, but not zero):
    # A Q = Q H + X C + W_dropped, so a Ritz vector's residual gains at most Σ_j |s_j| dropped_j.
    dropped = np.zeros(cap)
    spent_before = products.count
    # One wanted pair from a random start: the run's own sequence may verify it (_christoffel).
    own = StartCertificate(which, n, tol, eps) if k == 1 and block == 1 and start is None and locked is None else None

    q = _start_block(xp, rng, n, block, dtype, start, locked)  # (n, block): the block to multiply next
    rows = _set_rows(rows, 0, q)
    j, nv, restarts = 0, block, 0
    theta = s = resid = wanted = None

    while True:
        w = products.matmat(q)
        # With JAX the whole basis is used (rows past nv are zero) so shapes stay fixed.
        current = xp.matrix_transpose(rows if static else rows[:nv, :])  # (n, nv), a view
        # The last two blocks carry almost all of A q (the three-term part): removed first,
        # the full pass then removes little and the DGKS test rarely asks for a second one.
        # Not with JAX: a slice at a new offset each step would compile each step.
        lo = j + block if static else max(j - block, 0)
        local = None
        if lo < j + block:
            w, local = project_out(w, xp.matrix_transpose(rows[lo : j + block, :]), owned=True)
        w, (locked_coef, coef), norms = reorthogonalize(xp, w, (locked, current), owned=True)
        parts = [coef] + ([] if locked is None else [locked_coef]) + ([] if local is None else [local])
        parts.append(norms[None, :])
        both = backends.to_numpy(xp.concat(parts, axis=0)).astype(np.float64)  # one transfer
        if not np.all(np.isfinite(both)):
            raise products.nonfinite()
        hcol = both[:nv].copy()
        local_host = both[-1 - (j + block - lo) : -1]
        hcol[lo : j + block] += local_host
        # ‖A q‖ without a pass over it: the local pass removed ‖c‖² of its squared norm.
        product_norms = np.sqrt(both[-1] ** 2 + np.sum(local_host**2, axis=0))
        coupling[:, j : j + block] = both[current.shape[1] : current.shape[1] + n_locked]
        h[:nv, j : j + block] = hcol
        h[j : j + block, :nv] = hcol.T
        anorm = max(anorm, float(np.max(np.abs(hcol).sum(axis=0))))
        q, r, deficient = orthonormalize_block(
            xp, w, breakdown_tolerance(eps, anorm), reference=product_norms, already=(locked, current)
        )
        exhausted = False
        if deficient.any():  # an invariant subspace: continue from fresh directions
            own = None  # no longer one sequence from the start vector
            lost = backends.to_numpy(column_norms(xp, q)).astype(np.float64)
            dropped[j + np.nonzero(deficient)[0]] = lost[deficient]
            r[deficient, :] = 0.0
            q, exhausted = _refill(xp, rng, n, dtype, q, deficient, (locked, current))
        rows = _set_rows(rows, nv, q)
        h[nv : nv + block, j : j + block] = r
        h[j : j + block, nv : nv + block] = r.T
        j, nv = j + block, nv + block

        if j >= k:
            theta, s = np.linalg.eigh((h[:j, :j] + h[:j, :j].T) / 2)
            rank = ranking(theta, which)
            wanted = rank[:k]
            resid = _residuals(h, coupling, dropped, j, nv, s[:, wanted])
            done = bool(np.all(resid <= threshold(theta[wanted], tol, eps, anorm)))
            spent = products.count - spent_before
            if done and own is not None and restarts == 0 and not exhausted:
                room = min(cap - nv, max_matvecs - spent) // block
                verdict = own.check(h, j, theta, float(theta[wanted][0]), float(resid[0]), anorm, room, spent)
                done = verdict != "continue"
            if done or exhausted or spent + block > max_matvecs:
                break
            if nv + block > cap:  # the basis is full: thick restart with the best l Ritz vectors
                # Keep about half the basis (Wu & Simon), leaving room for at least one new block.
                keep_count = min(j - block, max(k + (j - k) // 2, k + 1))
                keep = rank[:keep_count]
                s_keep = backends.from_numpy(s[:, keep], xp=xp, dtype=dtype, device=device)
                rows = _rotate_rows(xp, rows, j, s_keep, static)  # rows[:keep] = the Ritz vectors
                tail_coupling = h[j : j + block, :j] @ s[:, keep]
                rows = _set_rows(rows, keep_count, q)  # the newest block, still the one to multiply
                if static:  # the fixed-shape products read every row: clear the stale ones
                    tail = xp.zeros((cap - keep_count - block, n), dtype=dtype, device=device)
                    rows = backends.set_index(rows, (slice(keep_count + block, cap), slice(None)), tail)
                h[:] = 0.0
                h[:keep_count, :keep_count] = np.diag(theta[keep])
                h[keep_count : keep_count + block, :keep_count] = tail_coupling
                h[:keep_count, keep_count : keep_count + block] = tail_coupling.T
                if n_locked:
                    coupling[:, :keep_count] = coupling[:, :j] @ s[:, keep]
                    coupling[:, keep_count:] = 0.0
                dropped[:keep_count] = np.abs(s[:, keep]).T @ dropped[:j]
                dropped[keep_count:] = 0.0
                j, nv = keep_count, keep_count + block
                restarts += 1
        elif exhausted or products.count - spent_before + block > max_matvecs:
            break

    if theta is None:  # budget too small to reach k vectors
        raise ValueError(f"max_matvecs={max_matvecs} is too small to build {k} Ritz vectors")
    converged = resid <= threshold(theta[wanted], tol, eps, anorm)
    vectors = xp.matrix_transpose(rows[:j, :]) @ backends.from_numpy(s[:, wanted], xp=xp, dtype=dtype, device=device)
    pairs = Pairs(theta[wanted], vectors, resid, converged, restarts, anorm)
    if own is not None and own.certified and converged.all():
        pairs.certified, pairs.certificate_matvecs = True, own.matvecs_after_convergence
    return pairs


_ROTATE_CHUNK = 1 << 16  # columns of the basis per piece of the restart's rotation


def _rotate_rows(xp: Any, rows: Array, j: int, s_keep: Array, static: bool) -> Array:
    """``rows[:l] = s_keepᵀ rows[:j]`` (l = ``s_keep.shape[1]``): the Ritz vectors kept at a restart.

    Piece by piece over the columns where arrays are updated in place: each piece is read
    whole before it is written, and no ``l × n`` temporary is made (at n = 10⁷, 0.5 GB of
    fresh pages, then a second copy into the basis).
    """
    n, keep = rows.shape[1], s_keep.shape[1]
    st = xp.matrix_transpose(s_keep)
    if static:  # one functional update (JAX)
        return backends.set_index(rows, (slice(0, keep), slice(None)), st @ rows[:j, :])
    for c in range(0, n, _ROTATE_CHUNK):
        cols = slice(c, min(c + _ROTATE_CHUNK, n))
        rows = backends.set_index(rows, (slice(0, keep), cols), st @ rows[:j, cols])
    return rows


def _set_rows(rows: Array, start: int, block: Array) -> Array:
    """``rows[start:start + b] = blockᵀ`` for a block (n, b) of basis vectors.

    Row by row where arrays are updated in place: torch copies a transposed (n, b) block
    into rows through a slow strided path (25 ms against 0.4 ms per row at n = 10⁶).
    """
    if backends.prefers_static_shapes(backends.namespace(rows)):  # one functional update
        return backends.set_index(rows, (slice(start, start + block.shape[1]), slice(None)), block.T)
    for i in range(block.shape[1]):
        rows = backends.set_index(rows, (start + i, slice(None)), block[:, i])
    return rows


def _residuals(h: np.ndarray, coupling: np.ndarray, dropped: np.ndarray, j: int, nv: int, s: np.ndarray) -> np.ndarray:
    """``‖A y − θ y‖`` for ``y = Q_j s``: the part along the pending block and along the locked
    vectors (exact), plus at most ``Σ_j |s_j| dropped_j`` from residuals dropped at breakdowns."""
    along_next = h[j:nv, :j] @ s
    along_locked = coupling[:, :j] @ s
    exact = np.sqrt(np.sum(along_next**2, axis=0) + np.sum(along_locked**2, axis=0))
    return exact + np.abs(s).T @ dropped[:j]


def _start_block(
    xp: Any, rng: backends.RandomSource, n: int, block: int, dtype: Any, start: Array | None, locked: Array | None
) -> Array:
    """The orthonormal first block: ``start`` (or a random draw) projected off ``locked``."""
    z = rng.normal((n, block), dtype) if start is None else start
    floor = 0.0 if locked is None else exhausted_floor(xp, z)
    q, _, deficient = orthonormalize_block(xp, z, floor, (locked,))
    if deficient.any():
        q, _ = _refill(xp, rng, n, dtype, q, deficient, (locked,))
    return q


def _refill(
    xp: Any,
    rng: backends.RandomSource,
    n: int,
    dtype: Any,
    q: Array,
    deficient: np.ndarray,
    against: tuple[Array | None, ...],
) -> tuple[Array, bool]:
    """Replace the deficient columns of ``q`` by fresh random directions.

    Returns ``(q, exhausted)``; ``exhausted`` is True when nothing orthogonal
    is left (then the deficient columns are zero, and the caller stops).
    """
    good = [q[:, i : i + 1] for i in range(q.shape[1]) if not deficient[i]]
    held = (*against, xp.concat(good, axis=1) if good else None)
    fresh = fresh_directions(xp, rng, n, int(deficient.sum()), dtype, held)
    exhausted = fresh is None
    cols, f = [], 0
    for i in range(q.shape[1]):
        if not deficient[i]:
            cols.append(q[:, i : i + 1])
        elif exhausted:
            cols.append(xp.zeros((n, 1), dtype=dtype, device=backends.device(q)))
        else:
            cols.append(fresh[:, f : f + 1])
            f += 1
    return xp.concat(cols, axis=1), exhausted
