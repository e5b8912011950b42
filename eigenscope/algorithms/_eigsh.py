"""Extremal eigenpairs of a symmetric operator: thick-restart (block) Lanczos and power iteration,
with a verification that the pairs found are the k most extreme ones, multiplicities included."""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np

from .. import backends
from .._warnings import ConvergenceWarning
from ..backends import Array, Seed
from . import _checks
from ._orth import take_columns
from ._pairs import WHICH_CHOICES, Pairs, ranking
from ._plan import announces, eigsh_count
from ._power import power_pairs
from ._scaling import NormalizedProducts
from ._thick_restart import thick_restart
from ._verify import Request, verify

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
        ``‖A xᵢ − λᵢ xᵢ‖`` of each pair: the true residual to rounding (read off the
        Krylov relation, which full re-orthogonalization with accurate reductions keeps
        exact to working precision at any n).
    converged : numpy.ndarray of bool, shape (k,)
        True when ``residual_norms ≤ tol · max(|λᵢ|, ε^{1/3} ‖A‖)`` *and* the set
        passed the verification (see :func:`eigsh`): all True or all False. All
        False when the budget ran out before every pair converged and the set was
        verified (``residual_norms`` still bound each pair's distance to an eigenvalue).
    num_matvecs : int
        Operator products spent (a block of b vectors counts b), verification included.
    method : str
        The method that ran.
    num_restarts : int
        Thick restarts (Lanczos/block) or deflation rounds (power).
    which : str
        The part of the spectrum asked for.
    verification_matvecs : int
        The products spent on verification (part of ``num_matvecs``): the fresh-start
        scans, or, when one pair per end was certified by the main run's own start,
        that run's steps after convergence.
    """

    eigenvalues: np.ndarray
    eigenvectors: Array | None
    residual_norms: np.ndarray
    converged: np.ndarray
    num_matvecs: int
    method: str
    num_restarts: int
    which: str
    verification_matvecs: int = 0


def _output_order(values: np.ndarray, which: str) -> np.ndarray:
    if which == "LA":
        return np.argsort(-values, kind="stable")
    if which == "LM":
        return np.argsort(-np.abs(values), kind="stable")
    return np.argsort(values, kind="stable")


def _dense_eigsh(products: NormalizedProducts, k: int, which: str, want_vectors: bool) -> EigshResult:
    """Small operators (n ≤ basis size): form the matrix with n products and call ``eigh``."""
    xp = products.xp
    n = products.shape[0]
    eye = xp.eye(n, dtype=products.dtype, device=products.device)
    dense = backends.to_numpy(products.matmat(eye)).astype(np.float64)  # A / s: no overflow below
    if not np.all(np.isfinite(dense)):
        raise products.nonfinite()
    theta, s = np.linalg.eigh((dense + dense.T) / 2)
    keep = ranking(theta, which)[:k]
    keep = keep[_output_order(theta[keep], which)]
    vectors = None
    if want_vectors:
        vectors = backends.from_numpy(s[:, keep], xp=xp, dtype=products.dtype, device=products.device)
    resid = np.linalg.norm(dense @ s[:, keep] - s[:, keep] * theta[keep], axis=0)
    scale = products.scale
    return EigshResult(theta[keep] * scale, vectors, resid * scale, np.ones(k, dtype=bool), n, "dense", 0, which)


# ---------------------------------------------------------------------------
# the public function
# ---------------------------------------------------------------------------


@announces(eigsh_count)
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
    """The ``k`` extremal eigenpairs of a symmetric operator, verified.

    Finds ``A xᵢ = λᵢ xᵢ`` for the ``k`` largest (``which="LA"``), smallest
    (``"SA"``), largest-magnitude (``"LM"``) eigenvalues, or both ends
    (``"BE"``: ``⌈k/2⌉`` from the top, ``⌊k/2⌋`` from the bottom).

    Guarantee
    ---------
    A pair is marked converged only when (1) its true residual satisfies
    ``‖A x − λ x‖ ≤ tol · max(|λ|, ε^{1/3}‖A‖)``, so an eigenvalue of A lies within
    that distance of λ, and (2) the set passed a verification: with every pair found
    so far locked, thick-restart Lanczos from a fresh random vector orthogonal to them
    runs on the rest of the space until its most extreme Ritz pair converges to the
    same tolerance; a value more extreme than the least extreme selected one (beyond
    both residuals) joins the set and another round follows. A single Krylov
    sequence sees one copy of each distinct eigenvalue: this is what finds the
    other copies of a repeated eigenvalue, and the eigenvalues beyond an invariant
    subspace (a low-rank GGN's null space). Rounds stop when nothing more extreme
    is found; the set then holds the k most extreme eigenvalues, multiplicities
    included (eigenvalues closer than the tolerance count as ties), with the
    certainty Krylov methods have — that a random start vector is not
    (numerically) orthogonal to a wanted eigenvector. For one wanted pair per end
    (``k = 1``, method ``"lanczos"``, no ``v0``) the main run's own random start can
    give the same certificate: its sequence continues past convergence while that
    is predicted to be cheaper than the fresh start. If the budget runs out
    first, every pair is marked not converged and a ``ConvergenceWarning`` says why.

    Cost of the verification: one run converging one eigenpair (two for ``"BE"``)
    per round, usually one round — about as many products as finding the
    (k+1)-th eigenvalue; ``result.verification_matvecs`` reports it.

    Scale: products are divided by a power of two fixed at the first product, so
    ``eigsh(c·A)`` returns ``c ×`` the results for A for any c whose products stay
    finite in the dtype (exactly so for powers of two); a product with NaN or Inf
    raises ``FloatingPointError``.

    Methods
    -------
    ``"lanczos"`` (``"auto"``)
        Thick-restart Lanczos (Wu & Simon 2000) with full re-orthogonalization:
        the basis holds at most ``ncv + 1`` vectors of length n
        (``ncv = max(2k + 1, 20, 10b)`` by default, rounded up to whole blocks),
        plus ``l ≤ ncv`` during a restart. Convergence is checked after every
        product (on the host, a ``j × j`` eigenproblem).
    ``"block"``
        The same with blocks of ``b = block_size`` vectors (default 4): one
        ``A.matmat`` per block — the fast path when a product of b vectors
        costs less than b products (a network's Hessian with a reused graph, a GPU).
    ``"power"``
        Power iteration with deflation, PyHessian's method, one pair at a time
        (``"BE"`` unsupported); kept as a baseline, verified as above.

    Operators with ``n ≤ ncv + b`` are formed densely (n products) and solved exactly.

    Parameters
    ----------
    A
        Symmetric n×n operator, or anything :func:`eigenscope.aslinearoperator` accepts.
    k
        Number of eigenpairs, an integer with ``1 ≤ k < n``.
    which
        ``"LA"``, ``"SA"``, ``"LM"`` or ``"BE"``.
    tol
        Relative residual tolerance, finite and > 0; default ``√ε`` of the dtype
        (1.5e-8 in float64, 3.5e-4 in float32). Eigenvalue errors are about ``‖r‖²/gap``.
    max_matvecs
        Budget of products (an integer ≥ 1), verification included; default
        ``max(50 · ncv, 1000)``. When spent, the result says which pairs converged
        and a ``ConvergenceWarning`` is emitted.
    method, block_size, ncv
        See Methods; ``block_size`` and ``ncv`` are integers ≥ 1.
    seed, v0
        Random start (int, NumPy/torch generator, JAX key) or an explicit
        start vector (n,) or block (n, b), finite and nonzero.
    check_symmetric
        Spend 2 products verifying ``uᵀAv = vᵀAu`` (raise ``ValueError`` if not).
        A dense or sparse matrix is checked for symmetry when it is wrapped (free);
        a matrix-free operator is trusted as declared unless this is set.

    Returns
    -------
    EigshResult
        Cost: typically a small multiple of ``k`` products for well-separated
        extremal eigenvalues, plus the verification; see ``result.num_matvecs``.
    """
    who = "eigsh"
    op = _checks.symmetric_operator(A, who)
    n = op.shape[0]
    which = _checks.choice(which, "which", WHICH_CHOICES, who)
    method = _checks.choice(method, "method", METHOD_CHOICES, who)
    if n < 2:
        raise ValueError(f"{who}: k must be < n, so the operator needs n >= 2, got shape {op.shape}")
    k = _checks.count(k, "k", who, minimum=1, maximum=n - 1)
    eps = backends.finfo_eps(op.xp, op.dtype)
    tol = float(np.sqrt(eps)) if tol is None else _checks.positive_tolerance(tol, "tol", who)
    max_matvecs = _checks.optional_count(max_matvecs, "max_matvecs", who)
    block_size = _checks.optional_count(block_size, "block_size", who)
    ncv = _checks.optional_count(ncv, "ncv", who)
    rng = backends.random_source(seed, xp=op.xp, device=op.device)
    extra = 0
    if check_symmetric:
        _checks.symmetric_numerically(op, rng.spawn())  # a stream of its own, on every backend
        extra = 2
    if method == "auto":
        method = "lanczos"
    if method == "power" and which == "BE":
        raise ValueError(f"{who}: method='power' supports which='LA', 'SA' or 'LM', not 'BE'")

    block = 1 if method in ("lanczos", "power") else (block_size or 4)
    ncv = max(2 * k + 1, 20, 10 * block) if ncv is None else ncv
    if ncv < k + 2 * block:
        raise ValueError(f"{who}: ncv must be at least k + 2 * block_size = {k + 2 * block}, got {ncv}")
    ncv = -(-ncv // block) * block  # whole blocks
    if v0 is not None:
        v0 = _checks.start_block(op, v0, "v0", who)
        if method != "power" and v0.shape[1] != block:
            raise ValueError(f"{who}: v0 must have {block} column(s) for block size {block}, got {v0.shape[1]}")
    products = NormalizedProducts(op, who)
    if n <= ncv + block:
        result = _dense_eigsh(products, k, which, return_eigenvectors)
        return result._replace(num_matvecs=result.num_matvecs + extra)
    if method == "power":
        budget = max_matvecs if max_matvecs is not None else max(1000, 200 * k)
        first = power_pairs(products, k, which, tol, budget, rng, v0)
    else:
        budget = max(50 * ncv, 1000) if max_matvecs is None else max_matvecs
        first = thick_restart(products, k, which, tol, budget, ncv, block, rng, start=v0)
    request = Request(k, which, tol, budget, block)
    return _finish(products, first, request, rng, method, extra, return_eigenvectors)


def _finish(
    products: NormalizedProducts,
    first: Pairs,
    request: Request,
    rng: backends.RandomSource,
    method: str,
    extra: int,
    want_vectors: bool,
) -> EigshResult:
    """Verify the first run's pairs (when they converged), select, order, scale back, warn."""
    xp = products.xp
    k, which, tol, budget, _ = request
    if first.converged.all():
        found, verified, spent = verify(products, first, request, rng)
        sel = found.select(k, which)
        values, residuals = found.values[sel], found.residuals[sel]
        vectors = found.vectors
        converged = np.full(k, verified)
        if not verified:
            warnings.warn(
                f"eigsh ({method}, which={which!r}): the {k} eigenpairs converged, but the budget "
                f"max_matvecs={budget} ran out before a fresh start vector could confirm that no more "
                "extreme or repeated eigenvalue was missed; marked not converged (raise max_matvecs)",
                ConvergenceWarning,
                stacklevel=3,
            )
    else:
        spent = 0
        sel = np.arange(k)
        values, residuals, vectors = first.values, first.residuals, first.vectors
        # Pairs that met the tolerance are not marked: unverified, the set may miss a more
        # extreme or repeated eigenvalue; their residuals still bound the distance to one.
        met = int(first.converged.sum())
        converged = np.zeros(k, dtype=bool)
        warnings.warn(
            f"eigsh ({method}, which={which!r}): {k - met} of {k} eigenpairs did not reach "
            f"tol={tol:.2g} within max_matvecs={budget}; none is marked converged (the set could not be "
            "verified); see result.residual_norms",
            ConvergenceWarning,
            stacklevel=3,
        )
    order = _output_order(values, which)
    out_vectors = None
    if want_vectors:
        cols = sel[order]
        out_vectors = take_columns(xp, vectors, cols)
    scale = products.scale
    return EigshResult(
        values[order] * scale,
        out_vectors,
        residuals[order] * scale,
        converged[order],
        products.count + extra,
        method,
        first.restarts,
        which,
        spent,
    )
