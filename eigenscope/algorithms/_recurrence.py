"""The Lanczos recurrence for many start vectors at once: the engine of ``lanczos`` and SLQ.

:func:`run_recurrence` builds the tridiagonals; how each new vector is kept orthogonal
is a strategy chosen once before the loop (:data:`REORTH_CHOICES`):

- ``"full"``: the basis on the operator's device, classical Gram–Schmidt against it
  with the DGKS second pass (:func:`~eigenscope.algorithms._orth.reorthogonalize_rows`);
- ``"partial"``: the basis on the device, Gram–Schmidt against it only at the steps where
  Simon's recurrence for the loss of orthogonality says it has reached ``√ε``
  (:class:`_PartialBasis`);
- ``"host"``: the same arithmetic as ``"full"`` against a basis kept in host memory (NumPy);
- ``"local"``: no basis, one local correction against the current vector.

:func:`tridiagonal_eigh` solves the small eigenproblem of the result on the host.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.linalg import eigh_tridiagonal

from .. import backends
from ..backends import Array
from ..linop import LinearOperator
from ._orth import breakdown_tolerance, reorthogonalize_rows, row_dots, row_norms
from ._scaling import NormalizedProducts


class Recurrence(NamedTuple):
    """The tridiagonals of p independent recurrences (host arrays but ``basis``)."""

    alpha: np.ndarray  # (p, m) host float64
    beta: np.ndarray  # (p, m) host float64; beta[:, j] couples steps j and j+1
    lengths: np.ndarray  # (p,) effective steps per start vector
    breakdown: np.ndarray  # (p,) bool
    basis: Array | None  # (p, m, n) backend, or None
    start_norms: np.ndarray  # (p,)
    num_matvecs: int


class _DeviceBasis:
    """``reorth="full"``: the basis (p, m, n) on the device; CGS with the DGKS second pass."""

    def __init__(self, op: LinearOperator, p: int, num_steps: int) -> None:
        self.xp = op.xp
        # With JAX the whole basis is used (rows past j are still zero) so that every
        # step has the same shapes: a new shape would cost a compilation per step.
        self.static = backends.prefers_static_shapes(op.xp)
        # Rows are read only once written (but with JAX): no pass to zero m·n numbers first.
        alloc = op.xp.zeros if self.static else op.xp.empty
        self.stored = alloc((p, num_steps, op.shape[0]), dtype=op.dtype, device=op.device)

    def apply(self, j: int, q: Array, w: Array, a: Array) -> tuple[Array, Array, Array | None]:
        """Store ``q`` (p, n) as row j; orthogonalize ``w`` (p, n) against rows ≤ j, update ``a``.
        Returns ``(w, a, None)``: the norms of ``w`` are left to the caller."""
        self.stored = backends.set_index(self.stored, (slice(None), j, slice(None)), q)
        return (*self._full_pass(j, w, a), None)

    def _full_pass(self, j: int, w: Array, a: Array) -> tuple[Array, Array]:
        """Gram–Schmidt of ``w`` against the stored rows ``≤ j``; ``a`` gains what was along ``q_j``."""
        stored = self.stored if self.static else self.stored[:, : j + 1, :]
        w, passes = reorthogonalize_rows(self.xp, w, stored, owned=True)
        for coef in passes:  # the part of w along q_j that the three-term step left
            a = a + coef[:, 0, j]
        return w, a

    def basis(self, steps: int) -> Array | None:
        """The first ``steps`` rows of each basis, (p, steps, n)."""
        return self.stored if steps == self.stored.shape[1] else self.stored[:, :steps, :]


class _HostBasis:
    """``reorth="host"``: the same arithmetic as ``"full"`` against a basis in host memory.

    For accelerators too small to hold the basis: the device keeps O(p n) numbers, and
    each step moves 2p vectors of length n to the host and p back.
    """

    def __init__(self, op: LinearOperator, p: int, num_steps: int) -> None:
        self.op = op
        self.stored = np.zeros((p, num_steps, op.shape[0]), dtype=backends.dtype_name(op.dtype))
        self.host_xp = backends.namespace(self.stored)

    def apply(self, j: int, q: Array, w: Array, a: Array) -> tuple[Array, Array, Array | None]:
        """As :meth:`_DeviceBasis.apply`, the Gram–Schmidt passes run by NumPy."""
        op = self.op
        self.stored[:, j, :] = backends.to_numpy(q)
        wh = backends.to_numpy(w).astype(self.stored.dtype, copy=False)
        wh, passes = reorthogonalize_rows(self.host_xp, wh, self.stored[:, : j + 1, :])
        w = backends.from_numpy(wh, xp=op.xp, dtype=op.dtype, device=op.device)
        # One transfer for the coefficients of both passes, added in order as "full" does.
        along = backends.from_numpy(
            np.stack([coef[:, 0, j] for coef in passes]), xp=op.xp, dtype=op.dtype, device=op.device
        )
        for i in range(len(passes)):
            a = a + along[i, :]
        return w, a, None

    def basis(self, steps: int) -> np.ndarray:
        """The first ``steps`` rows of each basis, a NumPy array (p, steps, n)."""
        return self.stored if steps == self.stored.shape[1] else self.stored[:, :steps, :]


class _PartialBasis(_DeviceBasis):
    """``reorth="partial"``: Simon's partial re-orthogonalization against the device basis.

    Gram–Schmidt at every step reads the whole basis (``j · n`` numbers, twice): over m = 100
    steps most of the time outside the products at n ≳ 10⁵. Simon (1984) showed that
    Lanczos vectors orthogonal to ``√ε`` (semi-orthogonal) give, to working precision, the
    tridiagonal of an exactly orthonormal basis of the same Krylov space: the same Ritz
    values, no ghost copies, the same Gauss quadrature. So each step takes the three-term
    step and a local correction against ``q_j`` (O(n); a second one where the three-term step
    cancelled so deeply that the first leaves more than ``√ε`` along ``q_j``), and estimates
    ``ω_{j+1,k} ≈ q_{j+1}ᵀq_k`` on the host with Simon's recurrence

        ``β_j ω_{j+1,k} = β_k ω_{j,k+1} + (α_k − α_j) ω_{j,k} + β_{k−1} ω_{j,k−1} − β_{j−1} ω_{j−1,k} ± ε(β_k + β_j)``

    (the last term bounds one step's rounding, with the sign that makes ``|ω|`` grow). Where
    an estimate exceeds ``√ε`` the new vector gets the Gram–Schmidt passes of ``"full"``
    (DGKS included), and so does the next one, whose recurrence still carries ``q_j``'s loss
    (Simon's rule); the estimates then restart at ε. A small ``β_j`` (a near-breakdown)
    makes the estimates large through the ``1/β_j``, and below ``100×`` the breakdown
    threshold a full pass is forced, so an invariant subspace is tested on an orthogonalized
    vector as with ``"full"``. Cost per step: O(n) on the device and O(j) on the host, plus
    a full pass at the steps that need one (``full_steps`` counts them).

    The loss is estimated, not measured: the tests check semi-orthogonality and the absence of
    ghosts on outlier, Wigner and steep spectra (``tests/algorithms/test_partial_reorth.py``).
    It pays most in float64; in float32, whose ``√ε`` is reached sooner, a network-like
    spectrum needs the pass at most steps. Hence not the default.
    """

    def __init__(self, op: LinearOperator, p: int, num_steps: int) -> None:
        super().__init__(op, p, num_steps)
        self.eps = backends.finfo_eps(op.xp, op.dtype)
        self.alpha = np.zeros((p, num_steps))
        self.beta = np.zeros((p, num_steps))
        self.omega = np.zeros((p, num_steps + 1))  # ω_{j,k}: q_j against q_k, k ≤ j
        self.omega_prev = np.zeros((p, num_steps + 1))  # ω_{j−1,k}
        self.omega[:, 0] = 1.0
        self.anorm = 0.0
        self.force = False  # the vector after a re-orthogonalized one gets a full pass too
        self.full_steps = 0
        self.second_corrections = 0

    def apply(self, j: int, q: Array, w: Array, a: Array) -> tuple[Array, Array, Array | None]:
        """Store ``q`` as row j; a local correction of ``w`` against it, and the full passes
        where the estimated loss of orthogonality asks. Returns ``(w, a, ‖w‖ per row)``."""
        xp = self.xp
        self.stored = backends.set_index(self.stored, (slice(None), j, slice(None)), q)
        corr = row_dots(xp, q, w)
        w = backends.subtract_scaled(w, corr[:, None], q)  # the loop's own array
        a = a + corr
        b = row_norms(xp, w)
        host = backends.to_numpy(xp.stack([a, b])).astype(np.float64)
        alpha, beta = host[0], host[1]
        previous = self.beta[:, j - 1] if j > 0 else np.zeros_like(beta)
        # ‖A q_j‖ ≤ |α_j| + β_j + β_{j−1}: one correction leaves about ε‖A q_j‖ along q_j, i.e.
        # ε‖A q_j‖/β_j once normalized. Beyond √ε (a deep cancellation, β_j ≪ ‖A q_j‖) a second
        # correction leaves ε ("twice is enough"), at O(n).
        along = self.eps * (np.abs(alpha) + beta + previous) / np.where(beta > 0, beta, np.inf)
        if np.any(along > np.sqrt(self.eps)):
            corr = row_dots(xp, q, w)
            w = backends.subtract_scaled(w, corr[:, None], q)
            a = a + corr
            b = row_norms(xp, w)
            host = backends.to_numpy(xp.stack([a, b])).astype(np.float64)
            alpha, beta = host[0], host[1]
            along[:] = self.eps
            self.second_corrections += 1
        if np.all(np.isfinite(host)):
            self.anorm = max(self.anorm, float(np.max(np.abs(alpha) + beta + previous)))
        self.alpha[:, j] = alpha
        estimate = self._estimate(j, beta)
        # What is left along q_j, normalized: at most ε‖A‖/β_j after one correction (‖A‖ for
        # ‖A q_j‖: the conservative bound), ε after a second.
        left = np.where(along > self.eps, self.eps * self.anorm / np.where(beta > 0, beta, np.inf), along)
        estimate[:, j] = np.where(np.isfinite(left), left, 0.0)
        live = beta > 0
        # One step multiplies a loss already present by up to ‖A‖/β_j, and a pass against a
        # semi-orthogonal basis leaves more than ε: where ‖A‖/β_j > ε^{-1/4} a single step
        # could cross √ε unseen by the estimates (measured: a spectrum whose outliers are 10⁶
        # times its bulk, near the end of the Krylov space), so every such step gets the pass.
        steep = bool(np.any(live & (self.anorm > self.eps**-0.25 * beta)))
        near_breakdown = steep or bool(np.any(live & (beta <= 100 * breakdown_tolerance(self.eps, self.anorm))))
        lost = bool(np.any(np.abs(estimate[live, : j + 1]) > np.sqrt(self.eps)))
        if self.force or lost or near_breakdown or not np.all(np.isfinite(host)):
            w, a = self._full_pass(j, w, a)
            b = row_norms(xp, w)
            beta = backends.to_numpy(b).astype(np.float64)
            estimate[:, : j + 1] = self.eps
            self.force = not self.force and lost
            self.full_steps += 1
        self.beta[:, j] = beta
        estimate[:, j + 1] = 1.0
        self.omega_prev, self.omega = self.omega, estimate
        return w, a, b

    def _estimate(self, j: int, beta: np.ndarray) -> np.ndarray:
        """Simon's estimates ``ω_{j+1,k}`` for k < j (the caller sets ``ω_{j+1,j}``, what the local
        corrections left)."""
        out = np.zeros_like(self.omega)
        safe = np.where(beta > 0, beta, np.inf)  # frozen recurrences: estimates 0
        if j > 0:
            al, be, cur, prev = self.alpha[:, :j], self.beta[:, :j], self.omega, self.omega_prev
            t = be * cur[:, 1 : j + 1] + (al - self.alpha[:, j : j + 1]) * cur[:, :j]
            t[:, 1:] += be[:, : j - 1] * cur[:, : j - 1]
            t -= self.beta[:, j - 1 : j] * prev[:, :j]
            noise = self.eps * (be + beta[:, None])
            with np.errstate(over="ignore", invalid="ignore"):
                out[:, :j] = (t + np.where(t >= 0, noise, -noise)) / safe[:, None]
        return out


class _LocalCorrection:
    """``reorth="local"``: no basis, one re-orthogonalization against the current vector.

    Memory O(p n), but ghost copies of converged Ritz values can appear after many steps.
    """

    def __init__(self, op: LinearOperator, p: int, num_steps: int) -> None:
        self.xp = op.xp

    def apply(self, j: int, q: Array, w: Array, a: Array) -> tuple[Array, Array, Array | None]:
        """Remove what the three-term step left of ``w`` along ``q``."""
        corr = row_dots(self.xp, q, w)
        return w - corr[:, None] * q, a + corr, None

    def basis(self, steps: int) -> None:
        """No basis is kept."""
        return None


_STRATEGIES = {"full": _DeviceBasis, "partial": _PartialBasis, "host": _HostBasis, "local": _LocalCorrection}
REORTH_CHOICES = tuple(_STRATEGIES)


def run_recurrence(
    op: LinearOperator, starts: Array, num_steps: int, *, reorth: str = "full", who: str = "lanczos"
) -> Recurrence:
    """Run independent Lanczos recurrences from the columns of ``starts`` (n, p) at once.

    Each step applies ``op.matmat`` once to the p current vectors and takes the
    three-term step ``w = A q_j − α_j q_j − β_{j−1} q_{j−1}``; the strategy named by
    ``reorth`` then keeps ``w`` orthogonal. With ``reorth="full"`` every new vector is
    orthogonalized against all stored vectors of its own recurrence: one classical
    Gram–Schmidt pass as batched matrix products, never a loop over vectors, and a
    second pass where the first cut the norm by more than 1/√2 (DGKS); the basis takes
    ``p · m · n`` numbers on the operator's device. ``reorth="host"`` does the same
    against a basis kept in host memory (NumPy), for accelerators too small to hold it:
    the device keeps O(p n) numbers, each step moves 2p vectors of length n to the host
    and p back, and the basis comes back as a NumPy array. ``reorth="local"`` keeps only
    the three-term recurrence (plus one local correction) and stores no basis: memory
    ``O(p n)``, but ghost copies of converged Ritz values can appear after many steps
    (harmless for the quadrature of smooth functions, wrong for counting eigenvalues).

    Products are divided by a power of two fixed at the first one (see
    :class:`~eigenscope.algorithms._scaling.NormalizedProducts`), so no norm over- or
    underflows at any scale; ``alpha`` and ``beta`` are scaled back. Norms are
    contiguous pairwise sums, accurate in float32 at n = 10⁷.
    Per step ``alpha`` and ``beta`` (2p scalars) cross to the host, and with
    ``"full"`` the p booleans of the DGKS test.
    A start vector whose recurrence breaks down (β ≈ 0: an invariant subspace)
    is frozen at zero; the run ends early once all have.
    Cost: ``p · num_steps`` products (fewer after breakdown).
    """
    if reorth not in REORTH_CHOICES:
        raise ValueError(f"reorth must be one of {REORTH_CHOICES}, got {reorth!r}")
    xp = op.xp
    p = starts.shape[1]
    eps = backends.finfo_eps(xp, op.dtype)
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
    strategy = _STRATEGIES[reorth](op, p, num_steps)

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
        # The three-term step first: it removes almost all of w along q_j and q_{j-1}.
        a = row_dots(xp, q, w)
        w = backends.subtract_scaled(w, a[:, None], q)  # the product is ours: in place
        w = backends.subtract_scaled(w, beta_prev[:, None], q_prev)
        w, a, b = strategy.apply(j, q, w, a)
        if b is None:
            b = row_norms(xp, w)
        ab = backends.to_numpy(xp.stack([a, b])).astype(np.float64)
        if not np.all(np.isfinite(ab)):
            raise products.nonfinite(f", Lanczos step {j + 1}")
        alpha[active, j] = ab[0, active]
        beta[active, j] = ab[1, active]
        lengths[active] = j + 1
        prev = beta[:, j - 1] if j > 0 else 0.0
        anorm = max(anorm, float(np.max(prev + np.abs(ab[0]) + ab[1])))  # row sums of T bound ‖A‖ from below
        newly = active & (ab[1] <= breakdown_tolerance(eps, anorm))
        breakdown |= newly
        active &= ~newly
        if not active.any() or j + 1 == num_steps:
            break
        if active.all():  # the common case: no mask, w normalized in place
            w /= b[:, None]
            q_prev, q, beta_prev = q, w, b
            continue
        keep = backends.from_numpy(active.astype(np.float64), xp=xp, dtype=op.dtype, device=op.device)
        safe = xp.where(keep > 0, b, xp.ones_like(b))
        q_prev, q = q, (w / safe[:, None]) * keep[:, None]
        beta_prev = b * keep

    steps_run = int(lengths.max())
    return Recurrence(
        alpha=alpha[:, :steps_run] * products.scale,
        beta=beta[:, :steps_run] * products.scale,
        lengths=lengths,
        breakdown=breakdown,
        basis=strategy.basis(steps_run),
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
