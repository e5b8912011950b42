"""Lanczos tridiagonalization with full re-orthogonalization, for one or many start vectors."""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
from scipy.linalg import eigh_tridiagonal

from .. import backends
from .._warnings import EigenscopeWarning
from ..backends import Array, Seed
from ..linop import LinearOperator, aslinearoperator
from . import _checks
from ._orth import row_coefficients, row_norms
from ._scaling import NormalizedProducts

REORTH_CHOICES = ("full", "host", "local")


class LanczosResult(NamedTuple):
    """The outcome of ``m`` Lanczos steps from one start vector ``v`` (‖v‖ = ``start_norm``).

    With ``Q`` the orthonormal Krylov basis and ``T = Qᵀ A Q`` tridiagonal,
    ``A Q = Q T + residual_norm · q_{m+1} e_mᵀ``. The eigenpairs ``(θᵢ, sᵢ)``
    of ``T`` give the Ritz values and the Gauss quadrature rule
    ``vᵀ f(A) v ≈ ‖v‖² Σᵢ weightsᵢ f(θᵢ)`` with ``weightsᵢ = (e₁ᵀ sᵢ)²``,
    exact for polynomials of degree ≤ 2m − 1.

    Attributes
    ----------
    alpha : numpy.ndarray, shape (m,)
        Diagonal of ``T`` (float64, host).
    beta : numpy.ndarray, shape (m - 1,)
        Off-diagonal of ``T``.
    ritz_values : numpy.ndarray, shape (m,)
        Eigenvalues of ``T``, ascending; also the quadrature nodes.
    weights : numpy.ndarray, shape (m,)
        Quadrature weights, summing to 1.
    ritz_residuals : numpy.ndarray, shape (m,)
        ``‖A yᵢ − θᵢ yᵢ‖ = residual_norm · |e_mᵀ sᵢ|`` for the Ritz vectors ``yᵢ = Q sᵢ``.
    residual_norm : float
        Norm of the next Krylov vector; ~0 at breakdown.
    basis : array, shape (n, m), or None
        ``Q`` on the operator's backend (a NumPy array with ``reorth="host"``;
        None with ``reorth="local"``, which stores no basis).
    ritz_vectors : array, shape (n, m), or None
        ``Q S``, when asked for with ``return_ritz_vectors=True``.
    num_steps : int
        Effective ``m`` (smaller than asked after breakdown).
    breakdown : bool
        Whether an invariant subspace was found: then the Ritz values are exact eigenvalues.
    start_norm : float
        ``‖v‖`` of the start vector, to scale quadrature of ``vᵀ f(A) v``.
    num_matvecs : int
        Operator products spent (= ``num_steps``).
    """

    alpha: np.ndarray
    beta: np.ndarray
    ritz_values: np.ndarray
    weights: np.ndarray
    ritz_residuals: np.ndarray
    residual_norm: float
    basis: Array | None
    ritz_vectors: Array | None
    num_steps: int
    breakdown: bool
    start_norm: float
    num_matvecs: int

    def quadrature(self, f: Any) -> float:
        """``vᵀ f(A) v ≈ ‖v‖² Σᵢ wᵢ f(θᵢ)`` for a vectorized function ``f`` of NumPy arrays."""
        return float(self.start_norm**2 * np.sum(self.weights * f(self.ritz_values)))

    @property
    def tridiagonal(self) -> np.ndarray:
        """``T`` as a dense (m, m) float64 matrix."""
        return np.diag(self.alpha) + np.diag(self.beta, 1) + np.diag(self.beta, -1)


class _Recurrence(NamedTuple):
    alpha: np.ndarray  # (p, m) host float64
    beta: np.ndarray  # (p, m) host float64; beta[:, j] couples steps j and j+1
    lengths: np.ndarray  # (p,) effective steps per start vector
    breakdown: np.ndarray  # (p,) bool
    basis: Array | None  # (p, m, n) backend, or None
    start_norms: np.ndarray  # (p,)
    num_matvecs: int


def _check_square_symmetric(op: LinearOperator, what: str) -> None:
    if op.shape[0] != op.shape[1]:
        raise ValueError(f"{what} needs a square operator, got shape {op.shape}")
    if not op.symmetric:
        reason = getattr(op, "nonsymmetric_reason", None) or (
            "it is declared non-symmetric (symmetric=False); symmetrize it, e.g. (A + A.T) / 2"
        )
        raise ValueError(f"{what} needs a symmetric operator, but {reason}")


def check_symmetric_numerically(op: LinearOperator, seed: Seed = None) -> None:
    """Raise ``ValueError`` unless ``uᵀ(Av) = vᵀ(Au)`` for two random vectors (2 matvecs)."""
    rng = backends.random_source(seed, xp=op.xp, device=op.device)
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


def clamp_steps(num_steps: int, n: int, who: str = "lanczos") -> int:
    """``min(num_steps, n)`` with a warning when clamped (a Krylov space has at most n dimensions)."""
    num_steps = _checks.count(num_steps, "num_steps", who)
    if num_steps > n:
        warnings.warn(
            f"num_steps={num_steps} exceeds the dimension n={n}; clamped to {n}",
            EigenscopeWarning,
            stacklevel=3,
        )
        return n
    return num_steps


_DGKS = float(1 / np.sqrt(2))  # a second pass when one pass cut the norm below this share


def run_recurrence(
    op: LinearOperator, starts: Array, num_steps: int, *, reorth: str = "full", who: str = "lanczos"
) -> _Recurrence:
    """Run independent Lanczos recurrences from the columns of ``starts`` (n, p) at once.

    Each step applies ``op.matmat`` once to the p current vectors. With
    ``reorth="full"`` every new vector is orthogonalized against all stored
    vectors of its own recurrence: after the three-term step, one classical
    Gram–Schmidt pass as batched matrix products (``(p, 1, n) @ (p, n, j)``), never a
    loop over vectors, and a second pass where the first cut the norm by more than
    1/√2 (DGKS); the basis takes ``p · m · n`` numbers on the operator's device.
    ``reorth="host"`` does the same against a basis kept in host memory (NumPy),
    for accelerators too small to hold it: the device keeps O(p n) numbers and
    each step moves 2p vectors of length n each way (the basis comes back as a
    NumPy array). ``reorth="local"`` keeps only
    the three-term recurrence (plus one local correction) and stores no basis:
    memory ``O(p n)``, but ghost copies of converged Ritz values can appear
    after many steps (harmless for the quadrature of smooth functions, wrong
    for counting eigenvalues).

    Products are divided by a power of two fixed at the first one (see
    :class:`~eigenscope.algorithms._scaling.NormalizedProducts`), so no norm over- or
    underflows at any scale; ``alpha`` and ``beta`` are scaled back. Norms are
    contiguous pairwise sums, accurate in float32 at n = 10⁷.
    Per step only ``alpha`` and ``beta`` (2p scalars) cross to the host.
    A start vector whose recurrence breaks down (β ≈ 0: an invariant subspace)
    is frozen at zero; the run ends early once all have.
    """
    if reorth not in REORTH_CHOICES:
        raise ValueError(f"reorth must be one of {REORTH_CHOICES}, got {reorth!r}")
    xp = op.xp
    n = op.shape[0]
    p = starts.shape[1]
    eps = backends.finfo_eps(xp, op.dtype)
    static = backends.prefers_static_shapes(xp)
    products = NormalizedProducts(op, who)

    # Divide by the largest entry first: ‖v‖ of a vector of size 1e30 would overflow float32.
    peaks = xp.max(xp.abs(starts), axis=0)
    peaks_host = backends.to_numpy(peaks).astype(np.float64)
    if not np.all(np.isfinite(peaks_host)) or np.any(peaks_host == 0):
        raise ValueError(f"{who}: start vectors must be finite and nonzero")
    rows = xp.asarray(starts.T / peaks[:, None])
    norms = row_norms(xp, rows)
    start_norms = backends.to_numpy(norms).astype(np.float64) * peaks_host
    q = rows / norms[:, None]  # (p, n): rows are the current vectors
    q_prev = xp.zeros_like(q)
    basis = xp.zeros((p, num_steps, n), dtype=op.dtype, device=op.device) if reorth == "full" else None
    host_basis = np.zeros((p, num_steps, n), dtype=backends.dtype_name(op.dtype)) if reorth == "host" else None

    alpha = np.zeros((p, num_steps))
    beta = np.zeros((p, num_steps))
    lengths = np.zeros(p, dtype=int)
    active = np.ones(p, dtype=bool)
    breakdown = np.zeros(p, dtype=bool)
    anorm = 0.0
    num_matvecs = 0
    beta_prev = xp.zeros((p,), dtype=op.dtype, device=op.device)

    for j in range(num_steps):
        w = products.matmat(xp.asarray(q.T)).T  # (p, n), divided by the scale s
        num_matvecs += p
        if basis is not None:
            basis = backends.set_index(basis, (slice(None), j, slice(None)), q)
            # Rows past j are still zero; with JAX the whole basis is used so that every
            # step has the same shapes (a new shape would cost a compilation per step).
            stored = basis if static else basis[:, : j + 1, :]  # (p, j+1, n)
            # The three-term step first (it removes almost all of w along q_j and q_{j-1}),
            # then one classical Gram–Schmidt pass against the whole basis, and a second pass
            # only for the recurrences whose norm that pass cut by more than 1/√2 (the
            # Daniel–Gragg–Kaufman–Stewart test, as in ARPACK): orthogonality to working
            # precision at half the cost of always running CGS twice.
            # Row-vector layout ((p, 1, n) @ (p, n, j+1), then (p, 1, j+1) @ (p, j+1, n)): torch's
            # CPU batched matmul runs the column layout ((p, j+1, n) @ (p, n, 1)) 7-12x slower
            # for p > 1 (8 probes, n = 1.5e5, 100 steps: 40 s of re-orthogonalization vs 5.8 s).
            a = xp.sum(q * w, axis=1)
            w = w - a[:, None] * q - beta_prev[:, None] * q_prev
            before = row_norms(xp, w)
            coef = row_coefficients(w, stored)
            w = w - (coef @ stored)[:, 0, :]
            a = a + coef[:, 0, j]
            after = row_norms(xp, w)
            if bool(np.any(backends.to_numpy(after <= _DGKS * before))):
                coef2 = row_coefficients(w, stored)
                w = w - (coef2 @ stored)[:, 0, :]
                a = a + coef2[:, 0, j]
        elif reorth == "host":
            # The same CGS2 against a basis kept in host memory: the device holds only the
            # current vectors, at the price of moving 2p vectors of length n per step.
            host_basis[:, j, :] = backends.to_numpy(q)
            wh = backends.to_numpy(w).astype(host_basis.dtype, copy=True)
            stored_h = host_basis[:, : j + 1, :]
            coef = stored_h @ wh[:, :, None]
            wh -= (stored_h.transpose(0, 2, 1) @ coef)[:, :, 0]
            coef2 = stored_h @ wh[:, :, None]
            wh -= (stored_h.transpose(0, 2, 1) @ coef2)[:, :, 0]
            w = backends.from_numpy(wh, xp=xp, dtype=op.dtype, device=op.device)
            a = backends.from_numpy(coef[:, j, 0] + coef2[:, j, 0], xp=xp, dtype=op.dtype, device=op.device)
        else:
            a = xp.sum(q * w, axis=1)
            w = w - a[:, None] * q - beta_prev[:, None] * q_prev
            corr = xp.sum(q * w, axis=1)  # one local re-orthogonalization against q_j
            w = w - corr[:, None] * q
            a = a + corr
        b = row_norms(xp, w)
        ab = backends.to_numpy(xp.stack([a, b])).astype(np.float64)  # the only host transfer per step
        if not np.all(np.isfinite(ab)):
            raise products.nonfinite(f", Lanczos step {j + 1}")
        alpha[active, j] = ab[0, active]
        beta[active, j] = ab[1, active]
        lengths[active] = j + 1
        prev = beta[:, j - 1] if j > 0 else 0.0
        anorm = max(anorm, float(np.max(prev + np.abs(ab[0]) + ab[1])))  # row sums of T bound ‖A‖ from below
        # Below 4 ε^{3/4}‖A‖, β is accumulated rounding noise (amplified by 1/β of earlier
        # steps, so a small multiple of ε is too strict): the Krylov space is invariant.
        tol = 4.0 * eps**0.75 * max(anorm, np.finfo(np.float64).tiny)
        newly = active & (ab[1] <= tol)
        breakdown |= newly
        active &= ~newly
        if not active.any() or j + 1 == num_steps:
            break
        keep = backends.from_numpy(active.astype(np.float64), xp=xp, dtype=op.dtype, device=op.device)
        safe = xp.where(keep > 0, b, xp.ones_like(b))
        q_prev, q = q, (w / safe[:, None]) * keep[:, None]
        beta_prev = b * keep

    steps_run = int(lengths.max())
    if host_basis is not None:
        basis = host_basis
    if basis is not None and steps_run < num_steps:
        basis = basis[:, :steps_run, :]
    return _Recurrence(
        alpha=alpha[:, :steps_run] * products.scale,
        beta=beta[:, :steps_run] * products.scale,
        lengths=lengths,
        breakdown=breakdown,
        basis=basis,
        start_norms=start_norms,
        num_matvecs=num_matvecs,
    )


def tridiagonal_eigh(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of the symmetric tridiagonal ``T`` (host, float64).

    LAPACK's ``stemr`` on ``T / s`` (s the largest entry, so any scale of A gives the same
    problem), and the QR-based ``stev`` where ``stemr`` does not converge (it can fail on
    tridiagonals with tiny off-diagonal entries, as after a near-breakdown).
    """
    if alpha.size == 1:
        return alpha.astype(np.float64).copy(), np.ones((1, 1))
    scale = float(max(np.max(np.abs(alpha)), np.max(np.abs(beta)) if beta.size else 0.0))
    scale = scale if scale > 0 and np.isfinite(scale) else 1.0
    a, b = alpha / scale, beta / scale
    try:
        theta, s = eigh_tridiagonal(a, b, lapack_driver="stemr")
    except np.linalg.LinAlgError:
        theta, s = eigh_tridiagonal(a, b, lapack_driver="stev")
    return theta * scale, s


def lanczos(
    A: Any,
    /,
    num_steps: int,
    *,
    seed: Seed = None,
    v0: Array | None = None,
    reorth: str = "full",
    return_ritz_vectors: bool = False,
    check_symmetric: bool = False,
) -> LanczosResult:
    """Run ``num_steps`` Lanczos steps on a symmetric operator.

    Builds the orthonormal basis ``Q`` of the Krylov space
    ``K_m(A, v) = span{v, Av, …, A^{m−1}v}`` and the tridiagonal ``T = QᵀAQ``.
    Full re-orthogonalization (the three-term step, then classical Gram–Schmidt as
    matrix products against the stored basis, repeated where the DGKS test asks) keeps ``Q`` orthonormal to working
    precision, so Ritz values do not repeat (no "ghost" eigenvalues).

    Breakdown (β ≈ 0: ``v`` lies in an invariant subspace of dimension d < m)
    ends the run after d steps and is a success: the d Ritz values are exact
    eigenvalues and ``breakdown`` is True.

    Guarantee: ``ritz_residuals`` are the true ``‖A yᵢ − θᵢ yᵢ‖`` to rounding
    (norms are accurate at any n, products are normalized by a power of two, so
    results for ``c·A`` are ``c ×`` those for A), hence an eigenvalue of A lies
    within ``ritz_residuals[i]`` of each ``θᵢ``. What a single Krylov sequence
    cannot tell: the multiplicity of an eigenvalue (one copy of each distinct
    eigenvalue is seen), nor, after breakdown, anything outside the invariant
    subspace. For the k most extreme eigenvalues with multiplicities, use
    :func:`eigenscope.eigsh`, which verifies exactly that.

    Parameters
    ----------
    A
        Symmetric operator (or anything :func:`eigenscope.aslinearoperator` accepts), n×n.
    num_steps
        m, an integer ≥ 1; clamped to n with an :class:`~eigenscope.EigenscopeWarning`.
    seed
        Seed for the Gaussian start vector (int, NumPy/torch generator, JAX key).
    v0
        Start vector (n,) of the operator's backend, finite and nonzero; skips the draw.
    reorth
        ``"full"`` (stores the basis on the device: m·n numbers), ``"host"``
        (the same basis in host memory, a NumPy array; 2 vector transfers per
        step) or ``"local"`` (no basis; loses orthogonality after many steps;
        see :func:`run_recurrence`).
    return_ritz_vectors
        Also form the Ritz vectors ``Q S`` (one n×m×m product on the device).
    check_symmetric
        Spend 2 extra products checking ``uᵀAv = vᵀAu``.

    Returns
    -------
    LanczosResult
        Cost: ``num_steps`` matvecs (fewer after breakdown), plus 2 with ``check_symmetric``.
    """
    who = "lanczos"
    op = aslinearoperator(A)
    _check_square_symmetric(op, who)
    reorth = _checks.choice(reorth, "reorth", REORTH_CHOICES, who)
    n = op.shape[0]
    m = clamp_steps(num_steps, n, who)
    extra = 0
    if check_symmetric:
        check_symmetric_numerically(op, seed)
        extra = 2
    if v0 is None:
        v0 = backends.random_source(seed, xp=op.xp, device=op.device).normal((n, 1), op.dtype)
    else:
        if getattr(v0, "ndim", None) == 2:
            raise ValueError(f"{who}: v0 must be a vector of shape ({n},), got shape {tuple(v0.shape)}")
        v0 = _checks.start_block(op, v0, "v0", who)
    rec = run_recurrence(op, v0, m, reorth=reorth, who=who)
    length = int(rec.lengths[0])
    alpha = rec.alpha[0, :length]
    beta_full = rec.beta[0, :length]
    theta, s = tridiagonal_eigh(alpha, beta_full[:-1])
    residual = float(beta_full[-1])
    basis = None if rec.basis is None else rec.basis[0, ...].T
    ritz_vectors = None
    if return_ritz_vectors:
        if basis is None:
            raise ValueError("Ritz vectors need the stored basis: use reorth='full' or 'host'")
        if reorth == "host":
            ritz_vectors = backends.from_numpy(basis @ s, xp=op.xp, dtype=op.dtype, device=op.device)
        else:
            ritz_vectors = basis @ backends.from_numpy(s, xp=op.xp, dtype=op.dtype, device=op.device)
    return LanczosResult(
        alpha=alpha,
        beta=beta_full[:-1],
        ritz_values=theta,
        weights=s[0, :] ** 2,
        ritz_residuals=residual * np.abs(s[-1, :]),
        residual_norm=residual,
        basis=basis,
        ritz_vectors=ritz_vectors,
        num_steps=length,
        breakdown=bool(rec.breakdown[0]),
        start_norm=float(rec.start_norms[0]),
        num_matvecs=rec.num_matvecs + extra,
    )
