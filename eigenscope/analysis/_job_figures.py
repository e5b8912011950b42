"""Stage 7 of ``eigenscope analyze``: every figure of the run, as PNG and SVG."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._job_curvature import Comparison, CurvatureStage
from ._job_landscape import Landscape
from ._job_tracking import TrackingStage
from ._matrices import matrix_title
from ._output import OutputDir
from ._progress import ProgressFactory


@dataclass(frozen=True)
class Figures:
    """The figure files written, by figure name (``{"density": ("density.png", "density.svg"), ...}``)."""

    files: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def to_json(self) -> dict[str, list[str]]:
        """The ``figures`` section of ``results.json``."""
        return {name: list(paths) for name, paths in self.files.items()}


def draw_figures(
    out: OutputDir,
    curvature: CurvatureStage,
    comparison: Comparison | None,
    landscape: Landscape,
    tracking: TrackingStage | None,
    *,
    k: int,
    progress: ProgressFactory,
) -> Figures:
    """Draw the run's figures into the staging folder of ``out``; none without matplotlib."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return Figures()  # the plot extra is not installed: results.json only
    from . import _plots

    report = curvature.report
    matrix = matrix_title(curvature.matrix)
    jobs: list[tuple[str, Callable[[], Any]]] = [
        ("density", lambda: _plots.plot_density(report.density, title=f"{matrix} spectral density (SLQ, log scale)")),
        ("stem", lambda: _plots.plot_stem(report.density, title=f"{matrix}: SLQ nodes and weights")),
    ]
    if landscape.curves:
        curves, quadratic = list(landscape.curves), list(landscape.quadratic)
        jobs.append(("loss_along_eigenvectors", lambda: _plots.plot_loss_curves(curves, quadratic=quadratic)))
    if landscape.surface is not None:
        surface = landscape.surface
        jobs.append(("loss_surface", lambda: _plots.plot_loss_surface(surface)))
    if comparison is not None:
        title = f"top-{k} {matrix} vs {matrix_title(comparison.matrix)}: principal angles"
        angles = comparison.angles
        jobs.append(("principal_angles", lambda: _plots.plot_principal_angles(angles, title=title)))
    if tracking is not None:
        series = tracking.tracking
        densities = dict(zip(series.labels, (r.density for r in series.reports), strict=True))
        jobs.append(("tracking", lambda: _plots.plot_tracking(series)))
        jobs.append(("densities", lambda: _plots.plot_densities(densities, title=f"{matrix} density over training")))
    bar = progress("figures", len(jobs))
    written: dict[str, tuple[str, ...]] = {}
    try:
        for name, make in jobs:
            paths = _plots.save_figure(make(), out.file(name))
            written[name] = tuple(p.name for p in paths)
            bar.update(1)
    finally:
        bar.close()
    return Figures(MappingProxyType(written))
