"""Orthogonalization and reductions: the one place where Gram–Schmidt is written.

Lanczos (one vector or a batch of recurrences), thick-restart block Lanczos, power
iteration, eigsh's verification and the sketches of Hutch++, XTrace and Diag++ all
orthogonalize through the functions here, with one breakdown threshold
(:func:`breakdown_tolerance`) and one second-pass criterion (:data:`DGKS`).

Accuracy at large n decides the design here. In float32 at n ≈ 10⁷ the
libraries' own norms are not accurate enough for a Krylov basis: torch's
``linalg.vector_norm`` is off by ~4e-4 relative, a one-column ``x @ x`` by up
to 1e-2, and NumPy's reduction along the non-contiguous axis of an (n, b) array
by ~5e-3 (measured at n = 1.1·10⁷). A basis normalized with such norms is not
orthonormal and the residuals read off the Krylov relation are not the true
ones. ``sum(x * x)`` along a contiguous axis is pairwise (NumPy, torch) or
tree-reduced (XLA) and stays at ~3e-8, and the matrix products ``Qᵀ w`` used for
Gram–Schmidt stay at ~1e-8 of ``‖Q‖‖w‖`` on every backend: those are what the
helpers below use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backends
from ..backends import Array


def column_norms(xp: Any, w: Array) -> Array:
    """``‖w[:, i]‖₂`` for each column of ``w`` (n, b), accurate to a few ε at any n.

    Each column is reduced on its own (:func:`dot`): NumPy sums a 1-d array pairwise
    but an (n, b) array along axis 0 naively (row after row), which loses ~√n·ε.
    Cost: one pass over ``w``.
    """
    if w.shape[1] == 1:
        return _norm(xp, w[:, 0])[None]
    return xp.stack([_norm(xp, w[:, i]) for i in range(w.shape[1])])


def _norm(xp: Any, x: Array) -> Array:
    """``‖x‖₂`` as :func:`dot` computes ``xᵀx``, with the chunks' norms (a vector norm reads
    ``x`` once without a temporary: 1.4 ms at n = 10⁷ in float32, against 12 ms for the
    chunks' inner products)."""
    n = x.shape[0]
    if n <= 2 * _CHUNK or not backends.framework_of(xp).chunked_reductions:
        return xp.sqrt(xp.sum(x * x))
    m = (n // _CHUNK) * _CHUNK
    acc = _accumulator(xp)
    parts = xp.astype(xp.linalg.vector_norm(xp.reshape(x[:m], (m // _CHUNK, _CHUNK)), axis=1), acc)
    total = xp.sum(parts * parts)
    if m < n:
        total = total + xp.astype(xp.sum(x[m:] * x[m:]), acc)
    return xp.astype(xp.sqrt(total), x.dtype)


def dot(xp: Any, x: Array, y: Array) -> Array:
    """``xᵀy`` for two vectors of length n, accurate to a few ε at any n, as a 0-d array.

    NumPy: ``sum(x * y)``, a pairwise sum. Elsewhere, for n > 2·2¹⁰: the inner products
    of chunks of 2⁶ (short sums, in the working precision), added in float64 — without
    the n-length temporary ``x * y`` (a single float32 dot was off by 1e-4 at n = 10⁷).
    """
    n = x.shape[0]
    if n <= 2 * _CHUNK or not backends.framework_of(xp).chunked_reductions:
        return xp.sum(x * y)
    m = (n // _DOT_CHUNK) * _DOT_CHUNK
    acc = _accumulator(xp)
    shape = (m // _DOT_CHUNK, _DOT_CHUNK)
    parts = xp.vecdot(xp.reshape(x[:m], shape), xp.reshape(y[:m], shape))
    total = xp.sum(xp.astype(parts, acc))
    if m < n:
        total = total + xp.astype(xp.sum(x[m:] * y[m:]), acc)
    return xp.astype(total, x.dtype)


def row_norms(xp: Any, w: Array) -> Array:
    """``‖w[i, :]‖₂`` for each row of ``w`` (p, n), accurate to a few ε at any n.

    Row by row (:func:`_norm`), whatever the layout: ``sum(w * w, axis=1)`` is a pairwise sum
    only along a contiguous axis, and the rows of a transposed (n, p) product are not
    (NumPy, float32, n = 2·10⁴, p = 2: 2e-5 relative error, enough to cost the Lanczos
    vectors their orthogonality).
    """
    return xp.stack([_norm(xp, w[i, :]) for i in range(w.shape[0])])


def row_dots(xp: Any, x: Array, y: Array) -> Array:
    """``x[i, :]ᵀ y[i, :]`` for each row of ``x`` and ``y`` (p, n), as :func:`dot` computes it."""
    return xp.stack([dot(xp, x[i, :], y[i, :]) for i in range(x.shape[0])])


_CHUNK = 1 << 10  # rows per partial product of a long float32 basis
# Entries per partial inner product in :func:`dot`: the backends' batched products add a
# chunk's terms one after the other, an error growing with its length (chunks of 2¹⁰ left
# ~10 ε of Σ|xᵢyᵢ| in Lanczos' α, enough to spoil semi-orthogonality), and short chunks
# were measured no slower (6 ms for chunks of 64 at n = 10⁷, torch, 1 thread).
_DOT_CHUNK = 1 << 6


def _accumulator(xp: Any) -> Any:
    """float64 where the backend has it (JAX only with x64 enabled), else float32."""
    return xp.float64 if backends.has_float64(xp) else xp.float32


def coefficients(basis: Array, w: Array) -> Array:
    """``Qᵀ w`` for a basis (n, j) and a block (n, b), accurate to a few ε at any n.

    float32 BLAS products over n ≳ 10⁶ rows lose orthogonality (‖QᵀQ − I‖ ≈ 2e-4 at
    n = 10⁶ in an ``eigsh`` run, 5e-4 for ``lanczos`` at 2·10⁶, measured). For float32
    and n > 2·2¹⁰ the rows are cut in chunks of 2¹⁰: one batched product ``w_cᵀ Q_c``
    per chunk in float32 (short sums), the partial results added in float64. Measured
    at n = 2·10⁶, j = 41 (torch, 2 threads): no slower than the plain product (15 ms
    against 25 ms; 32 ms against 288 ms for a block of 4); orthogonality 2e-7 for
    ``lanczos`` and 2e-6 for ``eigsh`` at n = 4·10⁶. float64 is left to the BLAS.
    """
    n, b = w.shape
    if n <= 2 * _CHUNK or backends.dtype_name(w.dtype) != "float32":
        return basis.T @ w
    xp = backends.namespace(w)
    j = basis.shape[1]
    m = (n // _CHUNK) * _CHUNK
    wc = xp.matrix_transpose(xp.reshape(w[:m, :], (m // _CHUNK, _CHUNK, b)))  # (B, b, C)
    qc = xp.reshape(basis[:m, :], (m // _CHUNK, _CHUNK, j))  # (B, C, j)
    acc = _accumulator(xp)
    total = xp.sum(xp.astype(wc @ qc, acc), axis=0)  # (b, j)
    if m < n:
        total = total + xp.astype(xp.matrix_transpose(w[m:, :]) @ basis[m:, :], acc)
    return xp.astype(xp.matrix_transpose(total), w.dtype)


def row_coefficients(w: Array, stored: Array) -> Array:
    """``w_i Q_iᵀ`` per recurrence: rows ``w`` (p, n) against bases ``stored`` (p, j, n) → (p, 1, j).

    The batched form of :func:`coefficients`, one recurrence at a time (a batched
    product over p recurrences and the chunks at once measured 13× slower).
    """
    p, n = w.shape
    xp = backends.namespace(w)
    if n <= 2 * _CHUNK or backends.dtype_name(w.dtype) != "float32":
        return w[:, None, :] @ xp.matrix_transpose(stored)
    rows = [coefficients(xp.matrix_transpose(stored[i, ...]), w[i, :, None]) for i in range(p)]  # (j, 1) each
    return xp.stack([xp.matrix_transpose(r) for r in rows])


def take_columns(xp: Any, a: Array, columns: Any) -> Array:
    """``a[:, columns]`` for an integer sequence: one gather on the array's device."""
    index = backends.from_numpy(np.asarray(columns, dtype=np.int64), xp=xp, dtype=xp.int64, device=backends.device(a))
    return xp.take(a, index, axis=1)


DGKS = float(1 / np.sqrt(2))
"""A second Gram–Schmidt pass is run where the first cut the norm below this share of it.

The Daniel–Gragg–Kaufman–Stewart test (as in ARPACK): a pass that removed less than
half the squared norm left ``w`` accurate to working precision, so the second pass,
which would change nothing, is skipped."""


def breakdown_tolerance(eps: float, anorm: float) -> float:
    """Below ``4 ε^{3/4} ‖A‖`` a new Krylov direction is rounding noise: the space is invariant.

    A small multiple of ε is too strict: the norm left is accumulated rounding, amplified
    by the ``1/β`` of earlier steps. ``anorm`` is a lower bound on ``‖A‖`` (row sums of T).
    """
    return 4.0 * eps**0.75 * max(anorm, np.finfo(np.float64).tiny)


def project_out(w: Array, basis: Array | None, *, owned: bool = False) -> tuple[Array, Array | None]:
    """One classical Gram–Schmidt pass: ``w − Q(Qᵀw)`` and the coefficients ``Qᵀw``.

    ``owned=True`` says ``w`` is the caller's scratch (not an operator's result, nor a view
    of anything kept): it is updated in place. At n = 10⁷ a fresh n-length array costs
    4–5× the arithmetic that fills it (its pages are mapped on first touch), so the Krylov
    loops allocate as few as they can. (JAX arrays are immutable: there ``-=`` rebinds.)
    """
    if basis is None or basis.shape[1] == 0:
        return w, None
    coef = coefficients(basis, w)
    if owned:
        return backends.subtract_product(w, basis, coef), coef
    return w - basis @ coef, coef


def cgs2(w: Array, against: tuple[Array | None, ...]) -> tuple[Array, list[Array | None]]:
    """Classical Gram–Schmidt twice: ``w`` (n, b) off every basis in ``against``, two passes.

    One pass leaves ``w`` orthogonal only to about ``ε κ``; a second makes it orthogonal to
    working precision ("twice is enough", Kahan–Parlett; Giraud et al. 2005). Each pass
    runs through ``against`` in order. Returns ``w`` and, per basis, the summed
    coefficients of both passes (None for a missing or empty basis). Cost: two products
    with each basis, ``O(n b Σ cols)``.
    """
    coefs: list[Array | None] = [None] * len(against)
    for _ in range(2):
        for i, basis in enumerate(against):
            w, c = project_out(w, basis)
            if c is not None:
                coefs[i] = c if coefs[i] is None else coefs[i] + c
    return w, coefs


def reorthogonalize(
    xp: Any, w: Array, against: tuple[Array | None, ...], *, owned: bool = False
) -> tuple[Array, list[Array | None], Array]:
    """One classical Gram–Schmidt pass of ``w`` (n, b) off each basis in ``against``, and a
    second where the first removed more than half of a column's squared norm (:data:`DGKS`).

    The bases must be orthonormal and orthogonal to one another, so the pass removes
    ``‖c‖²`` of ``‖w‖²`` exactly (up to rounding) and the test needs no norm after the
    pass: one pass over ``w`` for its norms and b booleans to the host. A caller that
    first removes the few directions carrying most of ``w`` (Lanczos' three-term step)
    makes the second pass rare, so this costs about half of :func:`cgs2`. Returns ``w``,
    per basis the summed coefficients (None for a missing or empty basis), and the norms
    (b,) of ``w`` before the passes. ``owned``: as for :func:`project_out`; the result is
    a fresh array whenever a pass ran.
    """
    before = column_norms(xp, w)
    coefs: list[Array | None] = [None] * len(against)
    for i, basis in enumerate(against):
        w, coefs[i] = project_out(w, basis, owned=owned)
        owned = owned or coefs[i] is not None
    present = [c for c in coefs if c is not None]
    if not present:
        return w, coefs, before
    removed = sum(xp.sum(c * c, axis=0) for c in present)
    if not bool(np.any(backends.to_numpy(removed > (1 - DGKS**2) * before * before))):
        return w, coefs, before
    for i, basis in enumerate(against):
        w, c = project_out(w, basis, owned=True)
        if c is not None:
            coefs[i] = coefs[i] + c
    return w, coefs, before


def project_out_rows(w: Array, stored: Array, *, owned: bool = False) -> tuple[Array, Array]:
    """One Gram–Schmidt pass per recurrence: rows ``w`` (p, n) off bases ``stored`` (p, j, n).

    Returns ``w − c Q`` and the coefficients ``c`` (p, 1, j). Row-vector layout
    (``(p, 1, n) @ (p, n, j)``): torch's CPU batched matmul runs the column layout
    (``(p, j, n) @ (p, n, 1)``) 7–12× slower for p > 1 (8 probes, n = 1.5e5, 100 steps:
    40 s of re-orthogonalization against 5.8 s).
    """
    coef = row_coefficients(w, stored)
    if owned:  # in place, as in :func:`project_out`
        return backends.subtract_product(w[:, None, :], coef, stored)[:, 0, :], coef
    return w - (coef @ stored)[:, 0, :], coef


def reorthogonalize_rows(xp: Any, w: Array, stored: Array, *, owned: bool = False) -> tuple[Array, tuple[Array, ...]]:
    """:func:`project_out_rows`, repeated for all recurrences when one needs it (:data:`DGKS`).

    Orthogonality to working precision at about half the cost of always running two
    passes. Returns ``w`` and the coefficients of each pass run (one or two; the caller
    adds them in order). The test moves p booleans to the host.
    """
    before = row_norms(xp, w)
    w, coef = project_out_rows(w, stored, owned=owned)
    # The basis is orthonormal: the pass removed ‖c‖² of ‖w‖², so the test needs no norm after it.
    removed = xp.sum(coef[:, 0, :] * coef[:, 0, :], axis=1)
    if not bool(np.any(backends.to_numpy(removed >= (1 - DGKS**2) * before * before))):
        return w, (coef,)
    w, coef2 = project_out_rows(w, stored, owned=True)
    return w, (coef, coef2)


def extend_orthonormal(xp: Any, q: Array | None, y: Array) -> tuple[Array, Array | None, Array]:
    """Extend an orthonormal basis ``Q`` (n, k) by the span of ``Y`` (n, b).

    Returns ``(Q_b, C, R_b)`` with ``[Q, Q_b]`` orthonormal and ``Y = Q C + Q_b R_b``
    (``C`` is None when ``Q`` is None; then it is the Householder QR of ``Y``).
    :func:`cgs2` against ``Q``, a Householder QR of what is left, then one more
    projection: when ``Y`` lies (numerically) inside ``span(Q)`` what is left is
    rounding noise, and its QR factor must be cleaned of ``span(Q)`` again to keep
    ``[Q, Q_b]`` orthonormal. Cost: ``O(n b (k + b))``, no product with A.
    """
    if q is None:
        qb, rb = xp.linalg.qr(y)
        return qb, None, rb
    v, (c,) = cgs2(y, (q,))
    qb, rb = xp.linalg.qr(v)
    v, c3 = project_out(qb, q)
    qb, r3 = xp.linalg.qr(v)
    return qb, c + c3 @ rb, r3 @ rb


def orthonormalize_block(
    xp: Any,
    w: Array,
    tol: float,
    against: tuple[Array | None, ...] = (),
    reference: np.ndarray | None = None,
    already: tuple[Array | None, ...] = (),
) -> tuple[Array, np.ndarray, np.ndarray]:
    """``w = Q R`` with orthonormal ``Q`` (n, b), column by column (CGS2 inside the block).

    Columns whose norm after projection is at most ``tol`` (rank deficiency:
    ``w`` lies in the span of the columns before it, or of ``against``) are
    flagged, get a zero row in ``R`` and are left for the caller to replace;
    their entry in ``Q`` is not normalized. Every column is first projected off
    the arrays in ``against`` (twice). A column whose norm fell below 1/100 of its
    ``reference`` norm (default: its own norm before projection; a caller that
    projected already passes the norm of the product it started from) is nearly in
    the span: normalizing it magnifies the rounding left along the span by up to
    100×, so it gets one more projection pass, off ``against``, the bases in
    ``already`` (those the caller projected off before) and the earlier columns
    (Kahan–Parlett's "twice is enough" needs this guard near breakdown). Returns ``(Q, R, deficient)`` with ``R`` a
    (b, b) float64 host array. Cost: ``O(n b²)`` plus ``O(n b Σ cols(against))``.
    """
    b = w.shape[1]
    if reference is None:
        reference = backends.to_numpy(column_norms(xp, w)).astype(np.float64)
    r = np.zeros((b, b))
    deficient = np.zeros(b, dtype=bool)
    cols: list[Array] = []
    for i in range(b):
        v = w[:, i : i + 1]
        for _ in range(2):
            v, coef = _project_column(xp, v, against, cols)
            if coef is not None:
                r[: len(cols), i] += coef
        norm = float(backends.to_numpy(column_norms(xp, v))[0])
        if not np.isfinite(norm):
            raise FloatingPointError("non-finite vector in the Krylov basis")
        if norm <= tol:
            deficient[i] = True
            cols.append(v)
            continue
        r[i, i] = norm
        v = v / norm
        if norm < 1e-2 * reference[i]:
            v, _ = _project_column(xp, v, (*already, *against), cols)
            v = v / column_norms(xp, v)[0]
        cols.append(v)
    return (cols[0] if b == 1 else xp.concat(cols, axis=1)), r, deficient


def _project_column(
    xp: Any, v: Array, against: tuple[Array | None, ...], cols: list[Array]
) -> tuple[Array, np.ndarray | None]:
    """One Gram–Schmidt pass of a column off ``against`` and the block's earlier columns."""
    for basis in against:
        v, _ = project_out(v, basis)
    if not cols:
        return v, None
    block = xp.concat(cols, axis=1)
    v, coef = project_out(v, block)
    return v, backends.to_numpy(coef).astype(np.float64)[:, 0]


def exhausted_floor(xp: Any, z: Array) -> float:
    """The norm below which a block ``z`` projected off other directions is rounding only.

    A random vector keeps about √((n − d)/n) of its norm when projected off d directions;
    what is left below √ε of its smallest column is rounding: the space is exhausted.
    """
    eps = backends.finfo_eps(xp, z.dtype)
    return float(np.sqrt(eps)) * float(np.min(backends.to_numpy(column_norms(xp, z))))


def fresh_directions(
    xp: Any,
    rng: backends.RandomSource,
    n: int,
    count: int,
    dtype: Any,
    against: tuple[Array | None, ...],
) -> Array | None:
    """``count`` random orthonormal vectors orthogonal to every array in ``against``.

    Used after a breakdown (an invariant subspace) to continue the Krylov space
    in a direction it cannot reach by itself. Returns None when the arrays in
    ``against`` already span the whole space (nothing orthogonal is left).
    """
    z = rng.normal((n, count), dtype)
    q, _, deficient = orthonormalize_block(xp, z, exhausted_floor(xp, z), against)
    return None if deficient.any() else q
