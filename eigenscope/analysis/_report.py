"""One curvature analysis of a symmetric operator: extremal eigenpairs, trace, density, metrics.

Backend-neutral: the operator may be a dense NumPy matrix or a PyTorch/JAX curvature
operator; only eigenvalues, densities and scalars come back to the host.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import EigshResult, SpectralDensity, TraceResult, aslinearoperator, backends, eigsh, spectral_density, trace
from ..backends import Array, Seed
from ..metrics import SpectralEnergy, gradient_fraction_profile, negative_mass, outlier_ratio, spectral_energy
from ._progress import CountingOperator, ProgressFactory, no_progress


def _eigsh_dict(r: EigshResult | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "eigenvalues": r.eigenvalues.tolist(),
        "residual_norms": r.residual_norms.tolist(),
        "converged": r.converged.tolist(),
        "num_matvecs": r.num_matvecs,
        "method": r.method,
        "num_restarts": r.num_restarts,
        "which": r.which,
    }


def _nan_to_none(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


@dataclass(frozen=True)
class CurvatureReport:
    """Everything :func:`analyze_curvature` measured on one operator.

    Attributes
    ----------
    dimension : int
        n, the operator's size (the number of parameters for a curvature matrix).
    top : EigshResult
        The ``k`` largest eigenpairs (``which="LA"``; eigenvectors on the operator's backend).
    bottom : EigshResult or None
        The ``k_bottom`` smallest eigenpairs (``which="SA"``), if asked for.
    trace : TraceResult or None
        Hutch++ estimate of ``tr(A)``, if asked for.
    density : SpectralDensity
        The SLQ spectral density.
    energy : SpectralEnergy
        L1/L2 energies of the positive and negative parts of ``density``.
    negative_mass : float
        Fraction of the spectrum that is negative (from ``density``).
    outlier_ratio : float
        ``λ₁/λ_K`` from ``top`` (``nan`` when ``λ_K ≤ 0``).
    outlier_k : int
        The K used (the number of classes when given).
    gradient_norm : float or None
        ``‖g‖`` when a gradient was given.
    gradient_fraction : numpy.ndarray, shape (k,) or (0,)
        ``‖P_j g‖²/‖g‖²`` for the top ``j = 1..k`` eigenvectors (the last entry is the
        fraction in the whole top-k space); empty without a gradient.
    timings : dict[str, float]
        Seconds per stage.
    num_matvecs : dict[str, int]
        Operator products per stage.
    label : str
        What was analyzed.
    """

    dimension: int
    top: EigshResult
    bottom: EigshResult | None
    trace: TraceResult | None
    density: SpectralDensity
    energy: SpectralEnergy
    negative_mass: float
    outlier_ratio: float
    outlier_k: int
    gradient_norm: float | None = None
    gradient_fraction: np.ndarray = field(default_factory=lambda: np.zeros(0))
    timings: dict[str, float] = field(default_factory=dict)
    num_matvecs: dict[str, int] = field(default_factory=dict)
    label: str = ""

    @property
    def lambda_max(self) -> float:
        """The largest eigenvalue found."""
        return float(np.max(self.top.eigenvalues))

    @property
    def lambda_min(self) -> float:
        """The smallest eigenvalue found (from ``bottom``; else the smallest Ritz value of the density)."""
        if self.bottom is not None:
            return float(np.min(self.bottom.eigenvalues))
        return self.density.support[0]

    def scalars(self) -> dict[str, float]:
        """The headline numbers, one flat dict (a row of a tracking table)."""
        row: dict[str, float] = {
            "lambda_max": self.lambda_max,
            "lambda_min": self.lambda_min,
            "trace": float("nan") if self.trace is None else self.trace.estimate,
            "trace_std_error": float("nan") if self.trace is None else self.trace.std_error,
            "outlier_ratio": self.outlier_ratio,
            "negative_mass": self.negative_mass,
            "l1_positive": self.energy.l1_positive,
            "l1_negative": self.energy.l1_negative,
            "l2_positive": self.energy.l2_positive,
            "l2_negative": self.energy.l2_negative,
            "l1_ratio": self.energy.l1_ratio,
            "l2_ratio": self.energy.l2_ratio,
        }
        if self.gradient_fraction.size:
            row["gradient_norm"] = float(self.gradient_norm)
            row["gradient_fraction"] = float(self.gradient_fraction[-1])
        row["num_matvecs"] = float(sum(self.num_matvecs.values()))
        return row

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (NaN and Inf as ``None``; eigenvectors left out)."""
        return {
            "label": self.label,
            "dimension": self.dimension,
            "top": _eigsh_dict(self.top),
            "bottom": _eigsh_dict(self.bottom),
            "trace": None
            if self.trace is None
            else {
                "estimate": self.trace.estimate,
                "std_error": _nan_to_none(self.trace.std_error),
                "num_matvecs": self.trace.num_matvecs,
                "method": self.trace.method,
            },
            "density": self.density.to_dict(),
            "energy": {k: _nan_to_none(v) for k, v in self.energy._asdict().items()},
            "negative_mass": self.negative_mass,
            "outlier_ratio": _nan_to_none(self.outlier_ratio),
            "outlier_k": self.outlier_k,
            "gradient_norm": self.gradient_norm,
            "gradient_fraction": self.gradient_fraction.tolist(),
            "timings": dict(self.timings),
            "num_matvecs": dict(self.num_matvecs),
        }


def analyze_curvature(
    A: Any,
    /,
    *,
    k: int = 10,
    k_bottom: int = 5,
    num_steps: int = 80,
    num_probes: int = 2,
    trace_matvecs: int = 99,
    gradient: Array | None = None,
    num_classes: int | None = None,
    tol: float | None = None,
    seed: Seed = 0,
    progress: ProgressFactory | None = None,
    label: str = "",
) -> CurvatureReport:
    """The standard curvature analysis of a symmetric operator, in four stages.

    1. top eigenpairs: ``es.eigsh(A, max(k, num_classes), which="LA")``;
    2. bottom eigenpairs: ``es.eigsh(A, k_bottom, which="SA")`` (skipped when 0);
    3. trace: ``es.trace(A, trace_matvecs, method="hutch++")`` (skipped when 0);
    4. spectral density: ``es.spectral_density(A, num_steps, num_probes)`` (SLQ);

    then the metrics: :func:`spectral_energy`, the negative mass, :func:`outlier_ratio`
    with ``K = num_classes`` (default k), and with a gradient the fraction of ``‖g‖²`` in
    the top-j eigenspaces (:func:`gradient_fraction_profile`).

    Parameters
    ----------
    A
        A symmetric operator (``est.hessian(...)``, a dense array, ...).
    k, k_bottom
        Eigenpairs at the top and at the bottom of the spectrum.
    num_steps, num_probes
        Lanczos steps per probe and probes of the SLQ density.
    trace_matvecs
        Budget of the Hutch++ trace estimate.
    gradient : array, shape (n,), optional
        The loss gradient (``H.gradient()`` for a PyTorch curvature operator).
    num_classes
        K of the outlier ratio ``λ₁/λ_K``; the top stage computes at least K pairs.
    tol
        Relative residual tolerance of ``eigsh`` (default: its own, ``√ε``).
    seed
        Seeds every stage (stage i uses ``seed + i`` for an int seed).
    progress
        A :data:`~eigenscope.analysis.ProgressFactory` (e.g. ``tqdm_progress()``), one bar
        per stage counting operator products.
    label
        Stored with the report.

    Returns
    -------
    CurvatureReport
    """
    op = aslinearoperator(A)
    progress = progress or no_progress
    kk = max(int(k), int(num_classes or 0))
    if kk < 1:
        raise ValueError(f"k must be at least 1, got {k}")

    def stage_seed(i: int) -> Seed:
        return seed + i if isinstance(seed, int) else seed

    timings: dict[str, float] = {}
    counts: dict[str, int] = {}

    def run(name: str, desc: str, total: int | None, fn: Any) -> Any:
        bar = progress(desc, total)
        counted = CountingOperator(op, bar)
        start = time.perf_counter()
        try:
            result = fn(counted)
        finally:
            bar.close()
        timings[name] = time.perf_counter() - start
        counts[name] = counted.num_matvecs
        return result

    top = run("top", f"top-{kk} eigenvalues", None, lambda o: eigsh(o, kk, which="LA", tol=tol, seed=stage_seed(0)))
    bottom = None
    if k_bottom > 0:
        bottom = run(
            "bottom",
            f"bottom-{k_bottom} eigenvalues",
            None,
            lambda o: eigsh(o, int(k_bottom), which="SA", tol=tol, seed=stage_seed(1)),
        )
    tr = None
    if trace_matvecs > 0:
        tr = run("trace", "trace (Hutch++)", trace_matvecs, lambda o: trace(o, trace_matvecs, seed=stage_seed(2)))
    density = run(
        "density",
        "density (SLQ)",
        num_steps * num_probes,
        lambda o: spectral_density(o, num_steps, num_probes, seed=stage_seed(3)),
    )
    outlier_k = int(num_classes) if num_classes else kk
    fraction = np.zeros(0)
    gnorm = None
    if gradient is not None:
        start = time.perf_counter()
        fraction = gradient_fraction_profile(gradient, top.eigenvectors[:, : int(k)])
        xp = backends.namespace(gradient)
        gnorm = float(np.sqrt(float(backends.to_numpy(xp.sum(gradient * gradient)))))
        timings["gradient_fraction"] = time.perf_counter() - start
    return CurvatureReport(
        dimension=op.shape[0],
        top=top,
        bottom=bottom,
        trace=tr,
        density=density,
        energy=spectral_energy(density),
        negative_mass=negative_mass(density),
        outlier_ratio=outlier_ratio(top.eigenvalues, outlier_k),
        outlier_k=outlier_k,
        gradient_norm=gnorm,
        gradient_fraction=fraction,
        timings=timings,
        num_matvecs=counts,
        label=label,
    )
