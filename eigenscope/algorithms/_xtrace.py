"""XTrace: every probe both sketches and tests, with leave-one-out estimates (see :func:`eigenscope.trace`)."""

from __future__ import annotations

import numpy as np

from .. import backends
from ..backends import Array
from ._common import (
    DEFAULT_NUM_MATVECS,
    Draws,
    Estimator,
    Products,
    Run,
    Target,
    column_dots,
    mean_and_error,
    to_host,
)
from ._orth import extend_orthonormal


class XTrace:
    """XTrace: every probe both sketches and tests, with leave-one-out exchangeability.

    Keeps ``Ω``, ``Y = AΩ``, ``Q``, ``Z = AQ`` (n × m each, on the device) and
    the small host matrices ``R`` (``Y = QR``), ``W = QᵀΩ``, ``H = QᵀZ``,
    ``T = ZᵀΩ``, ``diag(ΩᵀY)`` and ``‖ωᵢ‖²``, all grown block by block.
    """

    def __init__(self, prod: Products, draw: Draws, improved: bool) -> None:
        self.prod, self.draw, self.improved = prod, draw, improved
        self.xp = prod.op.xp
        self.n = prod.op.shape[1]
        self.eps = backends.finfo_eps(self.xp, prod.op.dtype)
        self.om = self.q = self.z = None
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
        q_b, c, r_b = extend_orthonormal(xp, self.q, y_b)
        z_b = self.prod.matmat(q_b)
        m0 = self.m
        r_new = np.zeros((m0 + b, m0 + b))
        r_new[:m0, :m0] = self.r
        if c is not None:
            r_new[:m0, m0:] = to_host(c)
        r_new[m0:, m0:] = to_host(r_b)
        # New blocks of W = QᵀΩ, H = QᵀZ, T = ZᵀΩ: O(n m b) work per round.
        if self.q is None:
            q_all, z_all, om_all = q_b, z_b, om_b
            w = to_host(q_b.T @ om_b)
            h = to_host(q_b.T @ z_b)
            t = to_host(z_b.T @ om_b)
        else:
            q_all = xp.concat([self.q, q_b], axis=1)
            z_all = xp.concat([self.z, z_b], axis=1)
            om_all = xp.concat([self.om, om_b], axis=1)
            w = np.block([[self.w, to_host(self.q.T @ om_b)], [to_host(q_b.T @ om_all)]])
            h = np.block([[self.h, to_host(self.q.T @ z_b)], [to_host(q_b.T @ z_all)]])
            t = np.block([[self.t, to_host(self.z.T @ om_b)], [to_host(z_b.T @ om_all)]])
        d = column_dots(om_b, y_b)
        self.prod.check_finite(np.concatenate([d, h.ravel()]), "a product with a probe or the basis")
        self.om, self.q, self.z = om_all, q_all, z_all
        self.r, self.w, self.h, self.t = r_new, w, h, t
        self.d_om_y = np.concatenate([self.d_om_y, d])
        self.om_norm2 = np.concatenate([self.om_norm2, column_dots(om_b, om_b)])

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

    def result(self) -> Run:
        """``(estimate, standard error, leave-one-out samples)``: host work ``O(m³)``."""
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
        est, err = mean_and_error(samples)
        return est, err, samples


def fixed(
    prod: Products, draw: Draws, num_matvecs: int | None, probes: Array | None, block_size: int | None, who: str
) -> Run:
    """All the probes given, else half the budget (capped at n): 2 products per probe."""
    n = prod.op.shape[1]
    est = XTrace(prod, draw, improved=draw.distribution != "rademacher")
    if probes is not None:
        m = probes.shape[1]
        if num_matvecs is not None and num_matvecs // 2 != m:
            raise ValueError(f"{who}: xtrace with {m} probes costs {2 * m} products, num_matvecs={num_matvecs}")
        if m > n:
            raise ValueError(f"{who}: xtrace takes at most n = {n} probes, got {m}")
    else:
        m = min((num_matvecs or DEFAULT_NUM_MATVECS) // 2, n)
    est.add(m)
    return est.result()


def adaptive(prod: Products, draw: Draws, first: int, cap: int, step: int, target: Target) -> Run:
    """``first // 2`` probes, then ``step`` more per round (extending the QR) until ``target`` or ``cap``."""
    n = prod.op.shape[1]
    est = XTrace(prod, draw, improved=draw.distribution != "rademacher")
    est.add(min(first // 2, n))
    while True:
        estimate, std_error, samples = est.result()
        b = min(step, (cap - prod.count) // 2, n - est.m)
        if target.reached(std_error, estimate) or b <= 0:
            return estimate, std_error, samples
        est.add(b)


ESTIMATOR = Estimator(minimum=2, hint=" (XTrace uses pairs)", fixed=fixed, adaptive=adaptive)
