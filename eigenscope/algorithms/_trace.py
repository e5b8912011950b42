"""Stochastic trace estimation: ``trace`` and its result, dispatching to one estimator module each.

Hutchinson (:mod:`._hutchinson`), Hutch++ (:mod:`._hutchpp`) and XTrace
(:mod:`._xtrace`) see the operator only through block products ``A.matmat``; every
array of length n stays on the operator's backend, device and dtype, and only
per-probe scalars and small k×k matrices cross to the host (float64 there).
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np

from .. import backends
from .._warnings import ConvergenceWarning
from ..backends import Array, Seed
from . import _checks, _hutchinson, _hutchpp, _xtrace
from ._common import DEFAULT_BLOCK_SIZE, DEFAULT_MAX_MATVECS, Draws, Estimator, Products, Target
from ._plan import announces, budget_count

_ESTIMATORS: dict[str, Estimator] = {
    "hutchinson": _hutchinson.ESTIMATOR,
    "hutch++": _hutchpp.ESTIMATOR,
    "xtrace": _xtrace.ESTIMATOR,
}
TRACE_METHODS = tuple(_ESTIMATORS)


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


@announces(budget_count(100))
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
    method = _checks.choice(method, "method", TRACE_METHODS, who)
    distribution = _checks.choice(distribution, "distribution", backends.DISTRIBUTIONS, who)
    op = _checks.square_operator(A, who)
    estimator = _ESTIMATORS[method]
    least, hint = estimator.minimum, estimator.hint
    num_matvecs = _checks.optional_count(num_matvecs, "num_matvecs", who, minimum=least, hint=hint)
    max_matvecs = _checks.optional_count(max_matvecs, "max_matvecs", who, minimum=least, hint=hint)
    block_size = _checks.optional_count(block_size, "block_size", who)
    rtol = _checks.optional_tolerance(rtol, "rtol", who)
    atol = _checks.optional_tolerance(atol, "atol", who)
    adaptive = rtol is not None or atol is not None
    _checks.probe_block(op, probes, who, adaptive=adaptive)

    prod = Products(op, block_size, who)
    draw = Draws(op, seed, distribution, probes)
    if not adaptive:
        estimate, std_error, samples = estimator.fixed(prod, draw, num_matvecs, probes, block_size, who)
        return TraceResult(estimate, std_error, prod.count, None, method, samples)

    target = Target(rtol or 0.0, atol or 0.0)
    step = block_size or DEFAULT_BLOCK_SIZE
    first = num_matvecs if num_matvecs is not None else least * step
    cap = max_matvecs if max_matvecs is not None else max(first, min(DEFAULT_MAX_MATVECS, 2 * op.shape[1]))
    if first > cap:
        raise ValueError(f"{who}: num_matvecs={first} exceeds max_matvecs={cap}")
    estimate, std_error, samples = estimator.adaptive(prod, draw, first, cap, step, target)
    converged = target.reached(std_error, estimate)
    if not converged:
        warnings.warn(
            f"{who} ({method}): the standard error {std_error:.3g} did not reach the target "
            f"{target.value(estimate):.3g} within max_matvecs={cap}; see result.converged",
            ConvergenceWarning,
            stacklevel=2,
        )
    return TraceResult(estimate, std_error, prod.count, converged, method, samples)
