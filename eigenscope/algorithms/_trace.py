"""Stochastic trace estimation: Hutchinson, Hutch++ and XTrace.

All three see the operator only through block products ``A.matmat``; every
array of length n stays on the operator's backend, device and dtype, and only
per-probe scalars and small k×k matrices cross to the host (float64 there).
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any, NamedTuple

import numpy as np

from .. import backends
from .._warnings import ConvergenceWarning
from ..backends import Array, Seed
from ..linop import LinearOperator, aslinearoperator

TRACE_METHODS = ("hutchinson", "hutch++", "xtrace")
DISTRIBUTIONS = ("rademacher", "normal", "gaussian", "sphere")
DEFAULT_NUM_MATVECS = 100
"""Budget of a fixed-budget run when neither ``num_matvecs`` nor a tolerance is given."""
DEFAULT_BLOCK_SIZE = 10
"""Probes drawn per round in adaptive mode when ``block_size`` is not given."""
DEFAULT_MAX_MATVECS = 1000
"""Upper end of the default cap in adaptive mode (see :func:`trace`)."""


class TraceResult(NamedTuple):
    """A stochastic estimate of ``tr(A)``.

    Attributes
    ----------
    estimate : float
        The trace estimate.
    std_error : float
        Estimated standard error of ``estimate``: the sample standard deviation
        of the per-probe values divided by √(count). ``0.0`` when the estimate is
        exact by construction (a Hutch++ sketch spanning the whole space); NaN
        when only one probe value is available.
    num_matvecs : int
        Products with A actually applied (columns passed to ``A.matmat``).
    converged : bool or None
        ``None`` without a target; otherwise whether ``std_error ≤ rtol·|estimate| + atol``.
    method : str
        ``"hutchinson"``, ``"hutch++"`` or ``"xtrace"``.
    samples : numpy.ndarray, shape (p,)
        The per-probe values whose mean is ``estimate`` (float64, host):
        ``zᵢᵀ A zᵢ`` for Hutchinson; ``tr(QᵀAQ) + gᵢᵀ(I − QQᵀ)A(I − QQᵀ)gᵢ`` for
        Hutch++ (the residual probes of the final sketch); the leave-one-out
        estimates for XTrace. Empty when the estimate is exact.
    """

    estimate: float
    std_error: float
    num_matvecs: int
    converged: bool | None
    method: str
    samples: np.ndarray


# ---------------------------------------------------------------------------
# shared machinery (also used by ``_diagonal``)
# ---------------------------------------------------------------------------


def _square_operator(a: Any, who: str) -> LinearOperator:
    op = aslinearoperator(a)
    m, n = op.shape
    if m != n:
        raise ValueError(f"{who} needs a square operator, got shape {op.shape}")
    if n < 1:
        raise ValueError(f"{who} needs a non-empty operator, got shape {op.shape}")
    return op


def _check_count(value: Any, name: str, minimum: int, who: str, hint: str = "") -> int | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{who}: {name} must be an integer >= {minimum}{hint}, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{who}: {name} must be an integer >= {minimum}{hint}, got {value}")
    return int(value)


def _check_tolerance(value: Any, name: str, who: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_, str)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{who}: {name} must be a finite number >= 0, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not value >= 0.0 or math.isinf(value):
        raise ValueError(f"{who}: {name} must be a finite number >= 0, got {value}")
    return value


def _check_choice(value: Any, name: str, choices: tuple[str, ...], who: str) -> str:
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{who}: unknown {name} {value!r}; valid choices are {valid}")
    return value


class _Products:
    """Counts the products with A and cuts wide blocks into ``block_size`` columns."""

    def __init__(self, op: LinearOperator, block_size: int | None, who: str) -> None:
        self.op = op
        self.block_size = block_size
        self.who = who
        self.count = 0

    def _apply(self, f: Any, x: Array) -> Array:
        b = x.shape[1]
        if self.block_size is None or b <= self.block_size:
            return self._checked(f, x)
        step = self.block_size
        # strict: no out-of-range stops
        parts = [self._checked(f, x[:, j : min(j + step, b)]) for j in range(0, b, step)]
        return self.op.xp.concat(parts, axis=1)

    def _checked(self, f: Any, x: Array) -> Array:
        """One call of the operator; a NaN or Inf column is reported as the product it came from."""
        xp = self.op.xp
        y = f(x)
        finite = backends.to_numpy(xp.all(xp.isfinite(y), axis=0))  # one sync per call, b booleans
        if not finite.all():
            col = int(np.argmin(finite))
            raise FloatingPointError(
                f"{self.who}: product {self.count + col + 1} with A (column {col + 1} of a block of "
                f"{x.shape[1]}) returned NaN or Inf; check the operator, and whether its values exceed the "
                f"range of {backends.dtype_name(self.op.dtype)}"
            )
        self.count += x.shape[1]
        return y

    def matmat(self, x: Array) -> Array:
        """``A @ X`` (costs ``X.shape[1]`` products)."""
        return self._apply(self.op.matmat, x)

    def rmatmat(self, x: Array) -> Array:
        """``Aᵀ @ X`` (costs ``X.shape[1]`` products; A itself for symmetric operators)."""
        return self._apply(self.op.rmatmat, x)

    def check_finite(self, values: np.ndarray, what: str) -> None:
        if not np.all(np.isfinite(values)):
            raise FloatingPointError(
                f"{self.who}: {what} is NaN or Inf after {self.count} products with A; "
                "the operator returned non-finite values (or overflowed the dtype)"
            )


class _Draws:
    """Probe blocks: drawn from a seeded source, or sliced off user-given probes."""

    def __init__(self, op: LinearOperator, seed: Seed, distribution: str, probes: Array | None) -> None:
        self.op = op
        self.distribution = distribution
        self.n = op.shape[1]
        self.fixed = probes
        self.used = 0
        self.source = None if probes is not None else backends.random_source(seed, xp=op.xp, device=op.device)

    def __call__(self, b: int) -> Array:
        if self.fixed is not None:
            block = self.fixed[:, self.used : self.used + b]
            self.used += b
            return block
        op = self.op
        if self.distribution == "sphere":
            # Uniform on the sphere of radius √n: E[z zᵀ] = I, and no variance from ‖z‖.
            g = self.source.normal((self.n, b), op.dtype)
            norms = op.xp.sqrt(op.xp.sum(g * g, axis=0))
            return g * (math.sqrt(self.n) / norms)
        return self.source.probes((self.n, b), op.dtype, self.distribution)


def _check_probes(op: LinearOperator, probes: Array | None, adaptive: bool, who: str) -> None:
    if probes is None:
        return
    if adaptive:
        raise ValueError(
            f"{who}: probes= fixes the budget, so it cannot be combined with rtol/atol (adaptive mode draws its own)"
        )
    op._check_operand(probes, 2, op.shape[1], f"{who} probes")
    if probes.shape[1] < 1:
        raise ValueError(f"{who}: probes must have at least one column, got shape {tuple(probes.shape)}")


def _column_dots(x: Array, y: Array) -> np.ndarray:
    """``diag(Xᵀ Y)`` on the host: one scalar per column."""
    xp = backends.namespace(x)
    return backends.to_numpy(xp.sum(x * y, axis=0)).astype(np.float64)


def _host(x: Array) -> np.ndarray:
    return backends.to_numpy(x).astype(np.float64)


def _extend_orthonormal(xp: Any, q: Array | None, y: Array) -> tuple[Array, Array | None, Array]:
    """Extend an orthonormal basis ``Q`` (n, k) by the span of ``Y`` (n, b).

    Returns ``(Q_b, C, R_b)`` with ``[Q, Q_b]`` orthonormal and ``Y = Q C + Q_b R_b``
    (``C`` is None when ``Q`` is None; then it is the Householder QR of ``Y``).
    Block classical Gram–Schmidt run twice, a Householder QR of what is left,
    then one more projection: when ``Y`` lies (numerically) inside ``span(Q)``
    what is left is rounding noise, and its QR factor must be cleaned of
    ``span(Q)`` again to keep ``[Q, Q_b]`` orthonormal.
    """
    if q is None:
        qb, rb = xp.linalg.qr(y)
        return qb, None, rb
    c = q.T @ y
    v = y - q @ c
    c2 = q.T @ v
    v = v - q @ c2
    c = c + c2
    qb, rb = xp.linalg.qr(v)
    c3 = q.T @ qb
    qb, r3 = xp.linalg.qr(qb - q @ c3)
    return qb, c + c3 @ rb, r3 @ rb


def _mean_and_error(samples: np.ndarray) -> tuple[float, float]:
    p = samples.size
    if p == 0:
        return math.nan, math.nan
    mean = float(np.mean(samples))
    if p < 2:
        return mean, math.nan
    return mean, float(np.std(samples, ddof=1) / math.sqrt(p))


def _reached(std_error: float, estimate: float, rtol: float, atol: float) -> bool:
    return bool(std_error <= rtol * abs(estimate) + atol)


# ---------------------------------------------------------------------------
# the three estimators
# ---------------------------------------------------------------------------


class _Hutchinson:
    """Plain Hutchinson: streams blocks, keeps only the per-probe scalars."""

    def __init__(self, prod: _Products, draw: _Draws) -> None:
        self.prod, self.draw = prod, draw
        self.samples = np.zeros(0)

    def add(self, p: int, block: int) -> None:
        done = 0
        while done < p:
            b = min(block, p - done)
            z = self.draw(b)
            values = _column_dots(z, self.prod.matmat(z))
            self.prod.check_finite(values, "a probe value zᵀAz")
            self.samples = np.concatenate([self.samples, values])
            done += b

    def result(self) -> tuple[float, float, np.ndarray]:
        est, err = _mean_and_error(self.samples)
        return est, err, self.samples


class _HutchPlusPlus:
    """Hutch++: an exact trace on a sketched range plus Hutchinson on the deflated rest."""

    def __init__(self, prod: _Products, draw: _Draws) -> None:
        self.prod, self.draw = prod, draw
        self.xp = prod.op.xp
        self.n = prod.op.shape[1]
        self.q: Array | None = None
        self.k = 0
        self.exact = 0.0  # tr(Qᵀ A Q), accumulated block by block
        self.residual = np.zeros(0)

    def grow(self, k_add: int) -> None:
        """Add ``k_add`` sketch columns: ``Q ← orth([Q, A S])``, ``tr(QᵀAQ)`` updated (2 k_add products)."""
        s = self.draw(k_add)
        qb, _, _ = _extend_orthonormal(self.xp, self.q, self.prod.matmat(s))
        self.exact += float(np.sum(_column_dots(qb, self.prod.matmat(qb))))
        self.prod.check_finite(np.asarray(self.exact), "tr(QᵀAQ)")
        self.q = qb if self.q is None else self.xp.concat([self.q, qb], axis=1)
        self.k += k_add
        self.residual = np.zeros(0)  # samples of the old deflation no longer apply

    def add_residual(self, p: int, block: int) -> None:
        """``p`` Hutchinson samples ``gᵀ(I − QQᵀ)A(I − QQᵀ)g`` (p products)."""
        if self.k >= self.n:
            return
        done = 0
        while done < p:
            b = min(block, p - done)
            g = self.draw(b)
            if self.q is not None:
                g = g - self.q @ (self.q.T @ g)
            values = _column_dots(g, self.prod.matmat(g))
            self.prod.check_finite(values, "a residual probe value")
            self.residual = np.concatenate([self.residual, values])
            done += b

    def result(self) -> tuple[float, float, np.ndarray]:
        if self.k >= self.n:  # Q spans everything: tr(QᵀAQ) = tr(A)
            return self.exact, 0.0, np.zeros(0)
        samples = self.exact + self.residual
        est, err = _mean_and_error(self.residual)
        return self.exact + est, err, samples


class _XTrace:
    """XTrace: every probe both sketches and tests, with leave-one-out exchangeability.

    Keeps ``Ω``, ``Y = AΩ``, ``Q``, ``Z = AQ`` (n × m each, on the device) and
    the small host matrices ``R`` (``Y = QR``), ``W = QᵀΩ``, ``H = QᵀZ``,
    ``T = ZᵀΩ``, ``diag(ΩᵀY)`` and ``‖ωᵢ‖²``, all grown block by block.
    """

    def __init__(self, prod: _Products, draw: _Draws, improved: bool) -> None:
        self.prod, self.draw, self.improved = prod, draw, improved
        self.xp = prod.op.xp
        self.n = prod.op.shape[1]
        self.eps = backends.finfo_eps(self.xp, prod.op.dtype)
        self.om = self.y = self.q = self.z = None
        self.r = self.w = self.h = self.t = np.zeros((0, 0))
        self.d_om_y = self.om_norm2 = np.zeros(0)

    @property
    def m(self) -> int:
        return self.d_om_y.size

    def add(self, b: int) -> None:
        """Add ``b`` probes (2 b products)."""
        xp = self.xp
        om_b = self.draw(b)
        y_b = self.prod.matmat(om_b)
        q_b, c, r_b = _extend_orthonormal(xp, self.q, y_b)
        z_b = self.prod.matmat(q_b)
        m0 = self.m
        r_new = np.zeros((m0 + b, m0 + b))
        r_new[:m0, :m0] = self.r
        if c is not None:
            r_new[:m0, m0:] = _host(c)
        r_new[m0:, m0:] = _host(r_b)
        # New blocks of W = QᵀΩ, H = QᵀZ, T = ZᵀΩ: O(n m b) work per round.
        if self.q is None:
            q_all, z_all, om_all = q_b, z_b, om_b
            w = _host(q_b.T @ om_b)
            h = _host(q_b.T @ z_b)
            t = _host(z_b.T @ om_b)
        else:
            q_all = xp.concat([self.q, q_b], axis=1)
            z_all = xp.concat([self.z, z_b], axis=1)
            om_all = xp.concat([self.om, om_b], axis=1)
            w = np.block([[self.w, _host(self.q.T @ om_b)], [_host(q_b.T @ om_all)]])
            h = np.block([[self.h, _host(self.q.T @ z_b)], [_host(q_b.T @ z_all)]])
            t = np.block([[self.t, _host(self.z.T @ om_b)], [_host(z_b.T @ om_all)]])
        d = _column_dots(om_b, y_b)
        self.prod.check_finite(np.concatenate([d, h.ravel()]), "a product with a probe or the basis")
        self.om, self.q, self.z = om_all, q_all, z_all
        self.y = y_b if self.y is None else xp.concat([self.y, y_b], axis=1)
        self.r, self.w, self.h, self.t = r_new, w, h, t
        self.d_om_y = np.concatenate([self.d_om_y, d])
        self.om_norm2 = np.concatenate([self.om_norm2, _column_dots(om_b, om_b)])

    def _leave_one_out_directions(self) -> np.ndarray:
        """Unit ``sᵢ`` with ``Rᵀsᵢ ∝ eᵢ``: ``Q(I − sᵢsᵢᵀ)Qᵀ`` projects onto ``range(Y₋ᵢ)``.

        For invertible R this is the normalized i-th column of ``R⁻ᵀ``. It is
        computed from the SVD ``R = U Σ Vᵀ`` as ``U Σ⁻¹ Vᵀeᵢ`` with singular values
        below ``m ε σ₁`` raised to that floor, so a rank-deficient sketch (A of
        low rank) still yields directions orthogonal to ``range(Y₋ᵢ)``.
        """
        u, sig, vt = np.linalg.svd(self.r)
        clipped = np.maximum(sig, max(float(sig[0]) * self.m * self.eps, np.finfo(np.float64).tiny))
        # Σ⁻¹ scaled by σ_min (weights in (0, 1]): the same directions, no overflow when R ≈ 0.
        s = u @ (vt * (clipped[-1] / clipped)[:, None])
        return s / np.linalg.norm(s, axis=0)

    def result(self) -> tuple[float, float, np.ndarray]:
        s = self._leave_one_out_directions()
        r, w, h, t = self.r, self.w, self.h, self.t
        c = np.sum(s * w, axis=0)  # cᵢ = sᵢᵀ wᵢ
        u = w - s * c  # uᵢ = (I − sᵢsᵢᵀ) wᵢ, so (I − Pᵢ) ωᵢ = ωᵢ − Q uᵢ
        low_rank_part = np.trace(h) - np.sum(s * (h @ s), axis=0)
        # (ωᵢ − Quᵢ)ᵀ A (ωᵢ − Quᵢ) with Qᵀyᵢ = Reᵢ and Zᵀωᵢ = Teᵢ
        residual = self.d_om_y - np.sum(t * u, axis=0) - np.sum(r * u, axis=0) + np.sum(u * (h @ u), axis=0)
        if self.improved:
            # ‖(I − Pᵢ)ωᵢ‖² = ‖ωᵢ‖² − ‖wᵢ‖² + cᵢ²; for rotation-invariant ωᵢ the direction of
            # (I − Pᵢ)ωᵢ is uniform on the sphere of the (n − m + 1)-dim complement.
            rest = self.om_norm2 - np.sum(w * w, axis=0) + c**2
            scale = np.where(rest > 0, (self.n - self.m + 1) / np.where(rest > 0, rest, 1.0), 0.0)
            residual = residual * scale
        samples = low_rank_part + residual
        self.prod.check_finite(samples, "a leave-one-out estimate")
        est, err = _mean_and_error(samples)
        return est, err, samples


# ---------------------------------------------------------------------------
# public function
# ---------------------------------------------------------------------------


def trace(
    A: Any,
    /,
    num_matvecs: int | None = None,
    *,
    method: str = "hutch++",
    rtol: float | None = None,
    atol: float | None = None,
    max_matvecs: int | None = None,
    distribution: str = "rademacher",
    block_size: int | None = None,
    seed: Seed = None,
    probes: Array | None = None,
) -> TraceResult:
    r"""Estimate ``tr(A)`` of a square operator from products with random probes.

    Parameters
    ----------
    A
        A square :class:`eigenscope.LinearOperator` (or anything
        :func:`eigenscope.aslinearoperator` accepts) of size n. Symmetry is not
        required: all three estimators are unbiased for any square A.
    num_matvecs
        The budget: products with A to spend. Without a tolerance it is the
        whole budget (default 100); with ``rtol``/``atol`` it is the first
        round (default ``block_size`` products for Hutchinson, ``3·block_size``
        for Hutch++, ``2·block_size`` for XTrace). At least 3 for Hutch++ and
        2 for XTrace.
    method
        ``"hutchinson"``, ``"hutch++"`` (default) or ``"xtrace"``.
    rtol, atol
        Target for the standard error: ``std_error ≤ rtol·|estimate| + atol``
        (a missing one counts as 0). Giving either switches on adaptive mode.
    max_matvecs
        Cap on the products in adaptive mode. Default
        ``max(first round, min(1000, 2 n))``: 2n products form A column by
        column twice over, so for small n an exact computation is cheaper.
    distribution
        ``"rademacher"`` (±1, default), ``"normal"`` (alias ``"gaussian"``) or
        ``"sphere"`` (uniform on the sphere of radius √n). All satisfy
        ``E[zzᵀ] = I``. With ``"normal"`` or ``"sphere"`` XTrace uses the
        paper's improved normalization (below); ``"sphere"`` is the paper's
        recommended choice.
    block_size
        Most columns per ``A.matmat`` call (bounds the memory of one product),
        and the probes added per round in adaptive mode (default 10 there;
        all at once in fixed-budget mode).
    seed
        An int, ``None``, or a backend generator/key (see
        :func:`eigenscope.backends.random_source`). Same seed, backend and
        device ⇒ the same numbers.
    probes
        An (n, b) array of the operator's backend, dtype and device used
        instead of random draws (fixed-budget mode only). Hutchinson uses all b
        (b products); Hutch++ sketches with the first ``k`` and tests with the
        other ``b − k`` (``k = num_matvecs // 3`` when given, then b must be
        ``num_matvecs − k``; else ``k = b // 2``), costing ``b + k`` products;
        XTrace uses all b (2b products, b ≤ n).

    Returns
    -------
    TraceResult
        ``estimate``, ``std_error``, ``num_matvecs``, ``converged``, ``method``, ``samples``.

    Raises
    ------
    ValueError
        A non-square operator, an unknown method or distribution, a budget below
        the method's minimum, probes combined with a tolerance or of the wrong count.
    TypeError
        Probes of another backend, dtype or device.
    FloatingPointError
        When a product returns NaN or Inf.

    Notes
    -----
    **Hutchinson** (Hutchinson 1989; Girard 1987). With probes ``zᵢ``,
    ``E[zᵢzᵢᵀ] = I``,

    .. math:: \widehat{\mathrm{tr}} = \frac1m \sum_{i=1}^m z_i^\top A z_i,
              \qquad \mathrm{se} = \frac{\mathrm{std}(z_i^\top A z_i)}{\sqrt m}.

    The variance is ``2(‖A‖_F² − Σᵢ Aᵢᵢ²)/m`` for Rademacher probes (symmetric
    A), so the error decays as ``m^{-1/2}``. Cost: m products.

    **Hutch++** (Meyer, Musco, Musco & Woodruff 2021). Split m products into
    thirds: a sketch ``S`` (n × k, ``k = ⌊m/3⌋``), ``Q = orth(AS)``, the exact
    ``tr(QᵀAQ)``, and Hutchinson with ``p = m − 2k`` probes ``gᵢ`` on the deflated
    rest:

    .. math:: \widehat{\mathrm{tr}} = \mathrm{tr}(Q^\top A Q)
              + \frac1p \sum_{i=1}^p g_i^\top (I - QQ^\top) A (I - QQ^\top) g_i .

    Unbiased because ``tr((I − QQᵀ)A(I − QQᵀ)) = tr(A) − tr(QᵀAQ)``; the
    residual variance is governed by ``‖A − QQᵀA‖_F²``, so for a decaying
    spectrum the error falls as ``m^{-1}`` instead of ``m^{-1/2}``, and it is
    exact when ``rank A ≤ k``. ``std_error`` is the Hutchinson standard error
    of the residual samples. The sketch is capped at n columns, where the
    estimate is exact. Cost: ``2k + p = m`` products.

    **XTrace** (Epperly, Tropp & Webber 2024). Draw ``m = ⌊budget/2⌋`` probes
    ``Ω = [ω₁ … ω_m]`` and let every probe serve both as sketch and as test
    vector. With ``Y = AΩ`` and ``Q₍ᵢ₎`` an orthonormal basis of
    ``range(Y₋ᵢ)`` (the sketch without column i), the exchangeable estimator is

    .. math:: \widehat{\mathrm{tr}} = \frac1m \sum_{i=1}^m \Big[
              \mathrm{tr}(Q_{(i)}^\top A Q_{(i)})
              + \omega_i^\top (I - Q_{(i)}Q_{(i)}^\top) A (I - Q_{(i)}Q_{(i)}^\top) \omega_i \Big],

    each term unbiased since ``Q₍ᵢ₎`` is independent of ``ωᵢ``; the error
    estimate is ``std(termᵢ)/√m``. The efficient form needs only ``Y = QR``
    and ``Z = AQ`` (m more products): with ``sᵢ`` the normalized i-th column
    of ``R⁻ᵀ`` (orthogonal to every column of R but the i-th),
    ``Q₍ᵢ₎Q₍ᵢ₎ᵀ = Q(I − sᵢsᵢᵀ)Qᵀ``. With ``H = QᵀZ``, ``W = QᵀΩ``, ``T = ZᵀΩ``,
    ``cᵢ = sᵢᵀwᵢ``, ``uᵢ = wᵢ − cᵢsᵢ`` (so ``(I − Pᵢ)ωᵢ = ωᵢ − Quᵢ``),
    ``rᵢ = Reᵢ = Qᵀyᵢ`` and ``tᵢ = Teᵢ = Zᵀωᵢ``,

    .. math:: \mathrm{term}_i = \mathrm{tr}H - s_i^\top H s_i
              + \omega_i^\top y_i - t_i^\top u_i - r_i^\top u_i + u_i^\top H u_i ,

    all from m × m matrices. The *improved* normalization (rotation-invariant
    probes: ``"normal"``, ``"sphere"``) multiplies the last four terms by
    ``(n − m + 1)/‖(I − Pᵢ)ωᵢ‖²``, with ``‖(I − Pᵢ)ωᵢ‖² = ‖ωᵢ‖² − ‖wᵢ‖² + cᵢ²``:
    the projected probe is then a uniform direction in the
    ``(n − m + 1)``-dimensional complement, which removes the variance of its
    length and keeps the estimator unbiased. XTrace is exact when
    ``rank A ≤ m − 1``. Cost: 2m products; host work ``O(m³)`` per estimate.

    **Memory** (arrays of length n): Hutchinson keeps one block of probes
    (``block_size`` columns; the whole budget at once when it is None in
    fixed-budget mode); Hutch++ keeps ``Q`` (k columns) plus one block;
    XTrace keeps ``Ω``, ``AΩ``, ``Q`` and ``AQ`` (4m columns).

    **Adaptive mode** (``rtol`` or ``atol`` given). Hutchinson adds
    ``block_size`` probes per round until the target or ``max_matvecs``.
    XTrace adds ``block_size`` probes per round (2·block_size products),
    extending the QR factorization and the small matrices without redoing
    earlier products. Hutch++ starts balanced (``k ≈ p ≈ budget/3``); each
    round it predicts from the CLT the residual probes still needed at the
    current sketch, ``p·(se/target)² − p``, and either adds them (when that is
    no more than doubling the sketch would cost) or doubles the sketch
    (2k more products) and redraws a residual set twice as large (the old
    residual samples belong to the old deflation and are dropped, at most a
    third of what was spent). Each round compares the standard error with the
    target, so the stopping rule is only as reliable as the error estimate
    from few samples; the first round should hold at least ~10 probes.

    Examples
    --------
    >>> import numpy as np, eigenscope as es
    >>> A = es.aslinearoperator(np.diag(1.0 / np.arange(1, 201) ** 2))
    >>> r = es.trace(A, 60, method="hutch++", seed=0)
    >>> bool(abs(r.estimate - np.sum(1.0 / np.arange(1, 201) ** 2)) < 5 * r.std_error + 1e-12)
    True

    References
    ----------
    M. F. Hutchinson, "A stochastic estimator of the trace of the influence
    matrix for Laplacian smoothing splines", 1989.
    R. A. Meyer, C. Musco, C. Musco, D. P. Woodruff, "Hutch++: Optimal
    stochastic trace estimation", SOSA 2021.
    E. N. Epperly, J. A. Tropp, R. J. Webber, "XTrace: Making the most of every
    sample in stochastic trace estimation", SIAM J. Matrix Anal. Appl. 45(1), 2024.
    """
    who = "trace"
    method = _check_choice(method, "method", TRACE_METHODS, who)
    distribution = _check_choice(distribution, "distribution", DISTRIBUTIONS, who)
    op = _square_operator(A, who)
    n = op.shape[1]
    minimum = {"hutchinson": 1, "hutch++": 3, "xtrace": 2}[method]
    hint = {"hutchinson": "", "hutch++": " (Hutch++ splits it into thirds)", "xtrace": " (XTrace uses pairs)"}[method]
    num_matvecs = _check_count(num_matvecs, "num_matvecs", minimum, who, hint)
    max_matvecs = _check_count(max_matvecs, "max_matvecs", minimum, who, hint)
    block_size = _check_count(block_size, "block_size", 1, who)
    rtol = _check_tolerance(rtol, "rtol", who)
    atol = _check_tolerance(atol, "atol", who)
    adaptive = rtol is not None or atol is not None
    _check_probes(op, probes, adaptive, who)

    prod = _Products(op, block_size, who)
    draw = _Draws(op, seed, distribution, probes)

    if not adaptive:
        if method == "hutchinson":
            est = _Hutchinson(prod, draw)
            p = probes.shape[1] if probes is not None else (num_matvecs or DEFAULT_NUM_MATVECS)
            if probes is not None and num_matvecs is not None and num_matvecs != p:
                raise ValueError(f"{who}: {p} probes give {p} products, but num_matvecs={num_matvecs}")
            est.add(p, block_size or p)
        elif method == "hutch++":
            est = _HutchPlusPlus(prod, draw)
            k, p = _hutchpp_split(num_matvecs, probes, who)
            k = min(k, n)
            est.grow(k)
            est.add_residual(p, block_size or p)
        else:
            est = _XTrace(prod, draw, improved=distribution != "rademacher")
            if probes is not None:
                m = probes.shape[1]
                if num_matvecs is not None and num_matvecs // 2 != m:
                    raise ValueError(f"{who}: xtrace with {m} probes costs {2 * m} products, num_matvecs={num_matvecs}")
                if m > n:
                    raise ValueError(f"{who}: xtrace takes at most n = {n} probes, got {m}")
            else:
                m = min((num_matvecs or DEFAULT_NUM_MATVECS) // 2, n)
            est.add(m)
        estimate, std_error, samples = est.result()
        return TraceResult(estimate, std_error, prod.count, None, method, samples)

    rtol = rtol or 0.0
    atol = atol or 0.0
    step = block_size or DEFAULT_BLOCK_SIZE
    first = num_matvecs if num_matvecs is not None else {"hutchinson": 1, "hutch++": 3, "xtrace": 2}[method] * step
    cap = max_matvecs if max_matvecs is not None else max(first, min(DEFAULT_MAX_MATVECS, 2 * n))
    if first > cap:
        raise ValueError(f"{who}: num_matvecs={first} exceeds max_matvecs={cap}")

    if method == "hutchinson":
        est = _Hutchinson(prod, draw)
        est.add(first, step)
        while True:
            estimate, std_error, samples = est.result()
            left = cap - prod.count
            if _reached(std_error, estimate, rtol, atol) or left <= 0:
                break
            est.add(min(step, left), step)
    elif method == "xtrace":
        est = _XTrace(prod, draw, improved=distribution != "rademacher")
        est.add(min(first // 2, n))
        while True:
            estimate, std_error, samples = est.result()
            b = min(step, (cap - prod.count) // 2, n - est.m)
            if _reached(std_error, estimate, rtol, atol) or b <= 0:
                break
            est.add(b)
    else:
        est = _HutchPlusPlus(prod, draw)
        k, p = _hutchpp_split(first, None, who)
        est.grow(min(k, n))
        est.add_residual(p, step)
        while True:
            estimate, std_error, samples = est.result()
            left = cap - prod.count
            if _reached(std_error, estimate, rtol, atol) or left <= 0:
                break
            _hutchpp_round(est, std_error, rtol * abs(estimate) + atol, left, step)
    converged = _reached(std_error, estimate, rtol, atol)
    if not converged:
        warnings.warn(
            f"{who} ({method}): the standard error {std_error:.3g} did not reach the target "
            f"{rtol * abs(estimate) + atol:.3g} within max_matvecs={cap}; see result.converged",
            ConvergenceWarning,
            stacklevel=2,
        )
    return TraceResult(estimate, std_error, prod.count, converged, method, samples)


def _hutchpp_split(num_matvecs: int | None, probes: Array | None, who: str) -> tuple[int, int]:
    """Sketch size k and residual probes p for a Hutch++ budget (2k + p products)."""
    if probes is None:
        m = num_matvecs or DEFAULT_NUM_MATVECS
        k = m // 3
        return k, m - 2 * k
    b = probes.shape[1]
    if num_matvecs is None:
        if b < 2:
            raise ValueError(f"{who}: hutch++ needs at least 2 probes (1 sketch, 1 residual), got {b}")
        k = b // 2
        return k, b - k
    k = num_matvecs // 3
    p = num_matvecs - 2 * k
    if b != k + p:
        raise ValueError(
            f"{who}: hutch++ with num_matvecs={num_matvecs} uses {k} sketch and {p} residual probes, "
            f"so probes must have {k + p} columns, got {b}"
        )
    return k, p


def _hutchpp_round(est: _HutchPlusPlus, std_error: float, target: float, left: int, step: int) -> None:
    """One adaptive Hutch++ round: top up the residual probes or double the sketch."""
    p = est.residual.size
    if math.isfinite(std_error) and target > 0 and p > 0:
        need = max(math.ceil(p * (std_error / target) ** 2) - p, 1)
    else:
        need = math.inf
    k_add = min(est.k, est.n - est.k)
    p_new = 0 if est.k + k_add >= est.n else 2 * max(p, 1)
    grow_cost = 2 * k_add + p_new
    if k_add > 0 and grow_cost <= left and need > grow_cost:
        est.grow(k_add)
        est.add_residual(p_new, step)
    else:
        # Whole blocks: the prediction is rough anyway, and equal block widths spare
        # backends that compile per shape (JAX) a recompilation every round.
        top = left if math.isinf(need) else step * math.ceil(need / step)
        est.add_residual(int(min(top, left)), step)
