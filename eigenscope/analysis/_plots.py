"""Figures: stem and smoothed densities, comparisons, loss along eigenvectors, tracking.

matplotlib (the ``plot`` extra) is imported inside each function, and figures are made
with ``matplotlib.figure.Figure`` directly, never through ``pyplot``: no global state, no
GUI backend, and the Agg renderer behind ``savefig`` whatever backend is active.
Each function returns the ``Figure``; :func:`save_figure` writes PNG and SVG.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..metrics import DensityLike, as_density

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..metrics import PrincipalAngles
    from ._landscape import LossCurve, LossSurface
    from ._tracking import Tracking

FORMATS = ("png", "svg")


def _new_figure(width: float = 6.4, height: float = 4.2, ncols: int = 1) -> tuple[Figure, Any]:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("eigenscope's plots need matplotlib: pip install 'eigenscope[plot]'") from exc
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, axes


def save_figure(
    fig: Figure, path: str | os.PathLike[str], *, formats: Sequence[str] = FORMATS, dpi: int = 130
) -> list[Path]:
    """Write ``fig`` to ``path.png`` and ``path.svg`` (``path`` without a suffix).

    Each file is written under a temporary name in the same directory and then renamed,
    so a reader never sees a half-written figure. The SVG carries no date and a fixed
    hash salt, so the same figure gives the same file.

    Returns
    -------
    list[pathlib.Path]
        The files written.
    """
    from matplotlib import rc_context

    base = Path(path)
    if base.suffix.lower() in tuple(f".{f}" for f in formats):
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        target = base.with_name(f"{base.name}.{fmt}")
        # A hidden unique name in the same folder (so the rename is atomic), created with the
        # usual permissions (tempfile.mkstemp would make it private to the user).
        tmp = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            metadata = {"Date": None} if fmt == "svg" else {"Software": None}
            with rc_context({"svg.hashsalt": "eigenscope"}):
                fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        written.append(target)
    return written


def _log_floor(values: np.ndarray, decades: float) -> float:
    peak = float(np.max(values))
    return peak * 10.0 ** (-decades) if peak > 0 else 1e-12


def plot_stem(density: DensityLike, *, ax: Axes | None = None, title: str | None = None, log: bool = True) -> Figure:
    """The discrete spectral measure: a stem at each Ritz value θᵢ of height wᵢ.

    This is what SLQ actually computes (seed 002: the stem plot, before any smoothing);
    with several probes, each probe's stems are drawn at ``1/num_probes`` of their weight.

    Parameters
    ----------
    density
        A :class:`~eigenscope.SpectralDensity`, eigenvalues, or ``(nodes, weights)``.
    ax
        Axes to draw in (a new figure when None).
    title
        Figure title.
    log
        Logarithmic weight axis (outliers carry weights many decades below the bulk).
    """
    d = as_density(density)
    nodes, weights = d.stem()
    if ax is None:
        fig, ax = _new_figure()
    else:
        fig = ax.figure
    bottom = _log_floor(weights, 8) if log else 0.0
    bottom = min(bottom, float(weights.min()) / 2) if log else 0.0
    ax.vlines(nodes, bottom, weights, color="C0", linewidth=1.0)
    ax.plot(nodes, weights, "o", color="C0", markersize=3)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(bottom, 2 * float(weights.max()))
    ax.axvline(0.0, color="0.6", linewidth=0.8, linestyle=":")
    ax.set_xlabel("eigenvalue λ (Ritz value θ)")
    ax.set_ylabel("quadrature weight w")
    ax.set_title(
        title or f"discrete spectral measure ({d.num_probes} probe{'s' * (d.num_probes > 1)}, n = {d.dimension})"
    )
    return fig


def plot_density(
    density: DensityLike,
    *,
    ax: Axes | None = None,
    sigma: float | None = None,
    kernel: str = "gaussian",
    num_points: int = 2000,
    log: bool = True,
    decades: float = 8.0,
    label: str | None = None,
    title: str | None = None,
) -> Figure:
    """The kernel-smoothed spectral density ``ρ(λ)`` on a logarithmic axis.

    As in the seed papers (Ghorbani et al.; Granziol et al.; PyHessian): the log scale shows
    the bulk near zero and the outliers far from it in one picture. ``σ`` defaults to
    ``(θ_max − θ_min)/200``; the axis shows ``decades`` decades below the peak.

    Parameters
    ----------
    density
        A :class:`~eigenscope.SpectralDensity`, eigenvalues, or ``(nodes, weights)``.
    ax, title, label
        Axes to draw in (a new figure when None), title, legend label.
    sigma, kernel, num_points
        Smoothing width, ``"gaussian"`` or ``"lorentzian"``, grid size.
    log, decades
        Logarithmic density axis and its depth.
    """
    d = as_density(density)
    if ax is None:
        fig, ax = _new_figure()
    else:
        fig = ax.figure
    sigma = d.default_sigma() if sigma is None else sigma
    grid = d.grid(num_points, sigma=sigma)
    rho = d.density(grid, kernel=kernel, sigma=sigma)
    floor = _log_floor(rho, decades) if log else 0.0
    ax.plot(grid, np.maximum(rho, floor) if log else rho, label=label)
    if log:
        ax.set_yscale("log")
        lo, hi = ax.get_ylim()
        ax.set_ylim(max(lo, floor), max(hi, 2 * float(rho.max())))
    ax.axvline(0.0, color="0.6", linewidth=0.8, linestyle=":")
    ax.set_xlabel("eigenvalue λ")
    ax.set_ylabel("density ρ(λ)" + (" (log scale)" if log else ""))
    ax.set_title(title or f"spectral density ({kernel}, σ = {sigma:.3g})")
    if label is not None:
        ax.legend()
    return fig


def plot_densities(
    densities: Mapping[str, DensityLike],
    *,
    sigma: float | None = None,
    kernel: str = "gaussian",
    num_points: int = 2000,
    log: bool = True,
    decades: float = 8.0,
    title: str | None = None,
) -> Figure:
    """Several smoothed densities on one axis, with one kernel width and one grid.

    ``σ`` defaults to the largest default width among them, so that differences come from
    the spectra and not from the smoothing (as :func:`density_kl` compares them).
    """
    if not densities:
        raise ValueError("plot_densities needs at least one density")
    ds = {name: as_density(d) for name, d in densities.items()}
    sigma = max(d.default_sigma() for d in ds.values()) if sigma is None else sigma
    lo = min(d.support[0] for d in ds.values()) - 5 * sigma
    hi = max(d.support[1] for d in ds.values()) + 5 * sigma
    grid = np.linspace(lo, hi, num_points)
    fig, ax = _new_figure()
    curves = {name: d.density(grid, kernel=kernel, sigma=sigma) for name, d in ds.items()}
    peak = max(float(c.max()) for c in curves.values())
    floor = peak * 10.0 ** (-decades)
    colors = _sequential_colors(len(curves))
    for color, (name, rho) in zip(colors, curves.items(), strict=True):
        ax.plot(grid, np.maximum(rho, floor) if log else rho, label=name, color=color)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(floor, 2 * peak)
    ax.axvline(0.0, color="0.6", linewidth=0.8, linestyle=":")
    ax.set_xlabel("eigenvalue λ")
    ax.set_ylabel("density ρ(λ)" + (" (log scale)" if log else ""))
    ax.set_title(title or f"spectral densities ({kernel}, σ = {sigma:.3g})")
    ax.legend()
    return fig


def _sequential_colors(count: int) -> list[Any]:
    from matplotlib import colormaps

    if count <= 1:
        return ["C0"]
    cmap = colormaps["viridis"]
    return [cmap(0.9 * i / (count - 1)) for i in range(count)]


def plot_loss_curves(
    curves: LossCurve | Sequence[LossCurve],
    *,
    quadratic: Sequence[tuple[float, float, float] | None] | None = None,
    title: str | None = None,
) -> Figure:
    """Loss (left) and accuracy (right, when there is one) along ``θ + t·v``.

    Parameters
    ----------
    curves
        One :class:`LossCurve` or several (e.g. along v₁, v₂, v₃); every data set of each
        is drawn (solid for the first set, dashed for the next).
    quadratic
        Per curve, ``(L(θ), gᵀv, λ)`` or None: draws the quadratic model
        ``L(θ) + t·gᵀv + ½λt²`` that the eigenvalue predicts (dotted), against which the
        measured curve shows where the landscape stops being quadratic.
    title
        Figure title.
    """
    curves = [curves] if not isinstance(curves, Sequence) else list(curves)
    if not curves:
        raise ValueError("plot_loss_curves needs at least one curve")
    from matplotlib.lines import Line2D

    has_acc = any(c.accuracy for c in curves)
    fig, axes = _new_figure(width=10.0 if has_acc else 6.4, ncols=2 if has_acc else 1)
    ax_loss = axes[0] if has_acc else axes
    styles = ["-", "--", "-.", (0, (1, 3))]
    set_names: list[str] = []
    for i, curve in enumerate(curves):
        color = f"C{i}"
        for name, loss in curve.loss.items():
            if name not in set_names:
                set_names.append(name)
            style = styles[set_names.index(name) % len(styles)]
            ax_loss.plot(curve.steps, loss, linestyle=style, color=color)
            if has_acc and name in curve.accuracy:
                axes[1].plot(curve.steps, curve.accuracy[name], linestyle=style, color=color)
        q = None if quadratic is None else quadratic[i]
        if q is not None:
            l0, slope, lam = q
            t = curve.steps * curve.direction_norm
            model = l0 + slope * t + 0.5 * lam * t**2
            # Where the quadratic model goes below zero it has nothing to say about a loss.
            ax_loss.plot(curve.steps, np.where(model > 0, model, np.nan), ":", color=color, alpha=0.8)
    # One legend entry per direction (colour) and per data set (line style), not per line.
    handles = [Line2D([], [], color=f"C{i}", label=c.label or f"direction {i + 1}") for i, c in enumerate(curves)]
    handles += [
        Line2D([], [], color="0.3", linestyle=styles[j % len(styles)], label=n) for j, n in enumerate(set_names)
    ]
    if quadratic is not None and any(q is not None for q in quadratic):
        handles.append(Line2D([], [], color="0.3", linestyle=":", label="quadratic model L + t gᵀv + ½λt²"))
    ax_loss.set_xlabel("step t along the direction")
    ax_loss.set_ylabel("loss")
    ax_loss.set_yscale("log")
    ax_loss.set_title(title or "loss along eigenvectors")
    if has_acc:
        axes[1].set_xlabel("step t along the direction")
        axes[1].set_ylabel("accuracy")
        axes[1].set_ylim(0, 1.02)
        axes[1].set_title("accuracy along eigenvectors")
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3), fontsize="small")
    return fig


def plot_loss_surface(surface: LossSurface, *, data: str | None = None, title: str | None = None) -> Figure:
    """Contours of the loss on the plane ``θ + s·v₁ + t·v₂`` (log-spaced levels)."""
    name = data or next(iter(surface.loss))
    z = surface.loss[name]
    fig, ax = _new_figure(width=5.6, height=4.6)
    from matplotlib.colors import LogNorm

    positive = z[z > 0]
    lo, hi = (float(positive.min()), float(positive.max())) if positive.size else (1e-3, 1.0)
    levels = np.geomspace(lo, hi, 16) if hi > lo else 16
    s, t = np.meshgrid(surface.steps1, surface.steps2, indexing="ij")
    cs = ax.contourf(s, t, np.maximum(z, lo), levels=levels, norm=LogNorm(lo, hi) if hi > lo else None, cmap="viridis")
    bar = fig.colorbar(cs, ax=ax, label=f"{name} loss")
    if hi > lo:
        ticks = np.geomspace(lo, hi, 6)
        bar.set_ticks(ticks, labels=[f"{x:.3g}" for x in ticks])
        bar.minorticks_off()
    ax.plot([0], [0], "w+", markersize=10)
    ax.set_xlabel(f"s along {surface.labels[0]}")
    ax.set_ylabel(f"t along {surface.labels[1]}")
    ax.set_title(title or f"{name} loss on the plane of {surface.labels[0]}, {surface.labels[1]}")
    return fig


def plot_principal_angles(
    angles: PrincipalAngles | Mapping[str, PrincipalAngles], *, title: str | None = None
) -> Figure:
    """Cosines of the principal angles between two subspaces, as bars (1 = shared direction)."""
    series = angles if isinstance(angles, Mapping) else {"": angles}
    fig, ax = _new_figure()
    width = 0.8 / max(len(series), 1)
    for i, (name, pa) in enumerate(series.items()):
        idx = np.arange(1, pa.cosines.size + 1)
        ax.bar(idx + (i - (len(series) - 1) / 2) * width, pa.cosines, width=width, label=name or None)
    ax.set_xlabel("principal angle index i")
    ax.set_ylabel("cos γᵢ")
    ax.set_ylim(0, 1.05)
    if len(series) > 1 or next(iter(series)):
        ax.legend()
    ax.set_title(title or "principal angles between the top subspaces")
    return fig


def plot_tracking(tracking: Tracking, *, title: str | None = None) -> Figure:
    """The spectrum over training: one column of SLQ nodes per checkpoint.

    Left: at each checkpoint the Ritz values of the density (marker area ∝ quadrature
    weight, symmetric-log axis so negative and positive eigenvalues both show), with
    the extremal eigenvalues from ``eigsh`` joined by lines. Right: the negative mass and
    the L1 energy ratio (negative/positive) per checkpoint.
    """
    fig, (ax, ax2) = _new_figure(width=11.0, height=4.4, ncols=2)
    x = np.arange(len(tracking.labels))
    lam_max, lam_min = [], []
    for i, report in enumerate(tracking.reports):
        nodes, weights = report.density.stem()
        ax.scatter(np.full(nodes.shape, i), nodes, s=4 + 400 * weights, color="C0", alpha=0.35, linewidths=0)
        lam_max.append(report.lambda_max)
        lam_min.append(report.lambda_min)
    ax.plot(x, lam_max, "o-", color="C3", label="λ_max (eigsh)")
    ax.plot(x, lam_min, "s-", color="C2", label="λ_min (eigsh)")
    bulk = min(abs(v) for v in (*lam_max, *lam_min) if v != 0) if any(lam_max + lam_min) else 1.0
    ax.set_yscale("symlog", linthresh=max(bulk / 10, 1e-6))
    ax.axhline(0.0, color="0.6", linewidth=0.8, linestyle=":")
    ax.set_xticks(x, tracking.labels, rotation=30 if len(x) > 6 else 0)
    ax.set_ylabel("eigenvalue (symlog)")
    ax.set_title(title or "spectrum over training (SLQ nodes, area ∝ weight)")
    ax.legend(fontsize="small")
    neg = [r.negative_mass for r in tracking.reports]
    ratio = [r.energy.l1_ratio for r in tracking.reports]
    ax2.plot(x, neg, "o-", label="negative mass")
    ax2.plot(x, ratio, "s-", label="L1 energy ratio (neg/pos)")
    ax2.set_yscale("symlog", linthresh=1e-3)
    ax2.set_xticks(x, tracking.labels, rotation=30 if len(x) > 6 else 0)
    ax2.set_title("negative curvature over training")
    ax2.legend(fontsize="small")
    return fig
