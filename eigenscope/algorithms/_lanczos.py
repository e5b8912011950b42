"""Lanczos tridiagonalization of a symmetric operator from one start vector: the public ``lanczos``."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import backends
from ..backends import Array, Seed
from . import _checks
from ._plan import announces
from ._recurrence import REORTH_CHOICES, run_recurrence, tridiagonal_eigh


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


@announces(lambda a: int(a["num_steps"]))
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
        ``"full"`` (stores the basis on the device: m·n numbers), ``"partial"`` (the same
        basis, Gram–Schmidt only where Simon's estimate of the lost orthogonality reaches
        ``√ε``: a basis orthogonal to about ``√ε`` instead of ε, the same Ritz values to
        working precision, fewer passes over the basis where the estimate allows), ``"host"``
        (the same basis in host memory, a NumPy array; each step moves the new
        vector and its product to the host and the product back) or ``"local"``
        (no basis; loses orthogonality after many steps; see
        :func:`~eigenscope.algorithms._recurrence.run_recurrence`).
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
    op = _checks.symmetric_operator(A, who)
    reorth = _checks.choice(reorth, "reorth", REORTH_CHOICES, who)
    n = op.shape[0]
    m = _checks.clamp_steps(num_steps, n, who)
    rng = backends.random_source(seed, xp=op.xp, device=op.device) if v0 is None or check_symmetric else None
    if v0 is None:
        v0 = rng.normal((n, 1), op.dtype)
    else:
        if getattr(v0, "ndim", None) == 2:
            raise ValueError(f"{who}: v0 must be a vector of shape ({n},), got shape {tuple(v0.shape)}")
        v0 = _checks.start_block(op, v0, "v0", who)
    extra = 0
    if check_symmetric:
        # A stream of its own, spawned after the start vector is drawn: the check changes nothing.
        _checks.symmetric_numerically(op, rng.spawn())
        extra = 2
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
