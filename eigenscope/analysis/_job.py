"""What ``eigenscope analyze`` does: load or train a model, analyze its curvature, write results.

The command-line layer (:mod:`eigenscope.cli`) turns flags and a config file into an
:class:`~eigenscope.analysis._settings.AnalyzeSettings` and calls :func:`run_analyze`.
The stages, in order: inputs (model, data, loss), training (the built-in demo only), the
curvature analysis, a second matrix's top subspace, the loss along eigenvectors, earlier
checkpoints, figures, and ``results.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from .._warnings import EigenscopeWarning
from ._loading import (
    JobError,
    describe,
    load_data,
    load_model,
    num_classes,
    one_line,
    read_checkpoint_file,
    resolve_loss,
    to_device,
)
from ._output import OutputDir, jsonable
from ._progress import CountingOperator, ProgressFactory, no_progress, tqdm_progress
from ._settings import AnalyzeSettings, default_threads
from ._summary import format_summary

MATRIX_NAMES = {"hessian": "Hessian", "ggn": "GGN", "gradcov": "gradient second moment M"}


@dataclass
class _Clock:
    """Seconds per stage (a stage entered twice adds up)."""

    timings: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


@dataclass
class _Inputs:
    """The model and data of a run."""

    model: Any
    loss_fn: Any
    train: list[Any]
    heldout: list[Any] | None
    source: str
    num_classes: int | None
    device: Any


def run_analyze(
    settings: AnalyzeSettings,
    *,
    stdout: TextIO | None = None,
    progress: ProgressFactory | None = None,
    argv: list[str] | None = None,
) -> dict[str, Any]:
    """Run ``eigenscope analyze`` with resolved settings; print the summary; return the results.

    Parameters
    ----------
    settings
        The options (see ``eigenscope analyze --help``).
    stdout
        Where the summary table goes (default ``sys.stdout``).
    progress
        A progress factory; default tqdm bars on stderr, none with ``settings.quiet``.
    argv
        The command line, recorded in ``results.json``.

    Returns
    -------
    dict
        What ``results.json`` holds, plus ``results_path``.

    Raises
    ------
    JobError
        For bad input (unknown module or factory, mismatched checkpoint, empty data,
        unwritable output directory, ...), with a one-line message; the output directory
        is then left as it was.
    """
    import torch

    stdout = stdout or sys.stdout
    settings.validate()
    if progress is None:
        progress = no_progress if settings.quiet else tqdm_progress()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(default_threads(settings))
    try:
        with warnings.catch_warnings():
            # Unconverged pairs are reported in the table and results.json, with their residuals.
            warnings.simplefilter("ignore", EigenscopeWarning)
            results = _run(settings, progress, argv)
    finally:
        torch.set_num_threads(threads_before)
    stdout.write(format_summary(results) + "\n")
    stdout.flush()
    return results


def _run(settings: AnalyzeSettings, progress: ProgressFactory, argv: list[str] | None) -> dict[str, Any]:
    wall = time.perf_counter()
    clock = _Clock()
    with clock("setup"):
        inputs = _load_inputs(settings)
        out = OutputDir(settings.out)  # after the inputs: a bad --model leaves no folder behind
    try:
        results: dict[str, Any] = {"command": ["eigenscope", *(argv or ["analyze"])]}
        checkpoints: list[tuple[str, Any]] = [(os.path.basename(p), p) for p in settings.track]
        if settings.model is None:
            with clock("training"):
                checkpoints, results["training"] = _train_demo(settings, inputs, progress)
        else:
            results["training"] = None
        with clock("analysis"):
            op, report, extra = _analyze(settings, inputs, progress)
        compare = angles = None
        if extra["compare"] != "none":
            with clock("compare"):
                compare, angles = _compare(settings, inputs, report, extra["compare"], progress)
        with clock("landscape"):
            landscape = _landscape(settings, inputs, report, extra, progress)
        tracking = None
        if checkpoints:
            with clock("tracking"):
                tracking = _track(settings, inputs, checkpoints, report, extra, progress)
        figures: dict[str, list[str]] = {}
        if settings.plots:
            with clock("plots"):
                figures = _figures(out, settings, report, landscape, angles, tracking, progress)
        results.update(_fit(landscape))
        results.update(
            {
                "settings": {
                    **dataclasses.asdict(settings),
                    "k_bottom": extra["k_bottom"],
                    "num_classes": extra["options"]["num_classes"],  # the K used (None: the outlier ratio uses --k)
                    "threads": default_threads(settings),
                    "compare": extra["compare"],
                },
                "versions": _versions(),
                "device": _device_info(inputs.device),
                "model": {
                    "source": inputs.source,
                    "class": type(inputs.model).__name__,
                    "num_params": op.shape[0],
                    "dtype": str(op.dtype).replace("torch.", ""),
                },
                "data": {
                    "num_samples": op.num_samples,
                    "num_batches": op.num_batches,
                    "heldout_samples": None if inputs.heldout is None else _num_samples(inputs.heldout),
                },
                "matrix": settings.matrix,
                "loss": extra["loss"],
                "gradient_norm": report.gradient_norm,
                "analysis": report.to_dict(),
                "metrics": report.scalars(),
                "compare": compare,
                "landscape": {
                    "radius": landscape["radius"],
                    "curves": [c.to_dict() for c in landscape["curves"]],
                    "quadratic_models": [list(q) for q in landscape["quadratic"]],
                    "surface": None if landscape["surface"] is None else landscape["surface"].to_dict(),
                },
                "tracking": None if tracking is None else tracking.to_dict(),
                "figures": figures,
            }
        )
        if tracking is not None and len(tracking.reports) > 1:
            from ._density_metrics import density_kl, density_wasserstein

            first, last = tracking.reports[0].density, tracking.reports[-1].density
            results["metrics"]["kl_first_to_last"] = density_kl(last, first)
            results["metrics"]["w1_first_to_last"] = density_wasserstein(last, first)
        results["num_matvecs"] = _matvecs(report, compare, tracking)
        timings = dict(clock.timings)
        timings.update({f"analysis.{k}": v for k, v in report.timings.items()})
        timings["total"] = time.perf_counter() - wall
        results["timings"] = timings
        results = jsonable(results)
        path = out.commit(results)
    except BaseException:
        out.abort()
        raise
    results["results_path"] = str(path)
    return results


# ---- stages ------------------------------------------------------------------------------


def _device(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise JobError(f"--device: {one_line(exc)}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise JobError(f"--device {name}: CUDA is not available on this machine")
    return device


def _load_inputs(settings: AnalyzeSettings) -> _Inputs:
    """Model, data and loss: the built-in demo's, or the user's factories'."""
    import torch

    from . import _demo

    device = _device(settings.device)
    if settings.model is None:
        try:
            train, heldout = _demo.digits_split(settings.seed)
        except ImportError as exc:
            raise JobError(f"the built-in demo needs scikit-learn for its data: {exc}") from exc
        model: Any = _demo.build_model(settings.seed)
        loss_fn: Any = "cross_entropy"
        source = "built-in: a small CNN trained on scikit-learn's 8x8 digits"
        # The demo trains on these tensors directly: put them on the device once.
        train = [to_device(b, device) for b in train]
        heldout = [to_device(b, device) for b in heldout]
    else:
        model = load_model(settings.model, settings.checkpoint)
        for path in settings.track:
            # Read now (and again when tracked): a bad file stops the run before the long part.
            read_checkpoint_file(path, "--track")
        train = load_data(settings.data, "--data")
        heldout = load_data(settings.heldout, "--heldout") if settings.heldout else None
        loss_fn = resolve_loss(settings.loss)
        source = settings.model + (f" + {settings.checkpoint}" if settings.checkpoint else "")
    dtype = {"float32": torch.float32, "float64": torch.float64}.get(settings.dtype or "")
    model = model.to(device=device, dtype=dtype) if dtype is not None else model.to(device=device)
    try:
        detected = num_classes(model, train)
    except Exception as exc:
        raise JobError(f"the model fails on the first batch of --data: {describe(exc)}") from exc
    _check_sizes(settings, _num_params(model), detected)
    classes = settings.num_classes if settings.num_classes is not None else detected
    return _Inputs(model, loss_fn, train, heldout, source, classes, device)


def _num_params(model: Any) -> int:
    """The size of the matrices: the number of trainable parameters (as the operators select them)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _check_sizes(settings: AnalyzeSettings, n: int, classes: int | None) -> None:
    """Refuse ``--k``, ``--k-bottom`` and ``--num-classes`` that do not fit the model.

    Checked before training and before anything is written, so a typo costs nothing.
    ``classes`` is the number of classes read off the model's outputs (None when the
    targets are not class labels).
    """
    if n == 0:
        return  # no trainable parameter: building the operator says so
    for flag, value in (("--k", settings.k), ("--k-bottom", settings.k_bottom)):
        if value is not None and value >= n:
            raise JobError(f"{flag} {value} must be smaller than the number of parameters ({n})")
    wanted = settings.num_classes
    if wanted is None:
        return
    if classes is not None and classes < n:
        high, why = classes, f"the model has {classes} outputs per sample"
    else:
        high, why = n - 1, f"it must be smaller than the number of parameters ({n})"
    if not 1 <= wanted <= high:
        raise JobError(f"--num-classes {wanted} is outside the allowed range [1, {high}]: {why}")


def _train_demo(
    settings: AnalyzeSettings, inputs: _Inputs, progress: ProgressFactory
) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """Train the demo CNN; return the checkpoints to track and a description of the training."""
    from . import _demo

    bar = progress("training (Adam)", settings.epochs)
    losses: list[float] = []

    def on_epoch(epoch: int, loss: float) -> None:
        losses.append(loss)
        bar.set_postfix_str(f"loss {loss:.3f}", refresh=False)
        bar.update(1)

    wanted = tuple(e for e in settings.track_epochs if e < settings.epochs)
    checkpoints = _demo.train(
        inputs.model,
        inputs.train,
        epochs=settings.epochs,
        seed=settings.seed,
        checkpoint_epochs=wanted,
        on_epoch=on_epoch,
    )
    bar.close()
    return checkpoints, {
        "optimizer": "Adam",
        "lr": 0.01,
        "batch_size": 64,
        "epochs": settings.epochs,
        "epoch_losses": losses,
    }


def _analyze(settings: AnalyzeSettings, inputs: _Inputs, progress: ProgressFactory) -> tuple[Any, Any, dict[str, Any]]:
    """The operator and :func:`analyze_curvature` on it."""
    from ._matrices import curvature_operator
    from ._report import analyze_curvature

    try:
        op = curvature_operator(inputs.model, inputs.loss_fn, inputs.train, settings.matrix, cache_graphs="auto")
        gradient = op.gradient()
        loss = op.loss()
    except (TypeError, ValueError, FloatingPointError, RuntimeError) as exc:
        raise JobError(f"cannot build the {settings.matrix} operator: {one_line(exc)}") from exc
    n = op.shape[0]
    _check_sizes(settings, n, None)  # again, on the operator's own size
    k_bottom = settings.k_bottom
    if k_bottom is None:
        # GGN and M are PSD: nothing below zero. A tiny model gets what it has.
        k_bottom = min(3 if settings.matrix == "hessian" else 0, n - 1)
    options = {
        "k": settings.k,
        "num_steps": settings.steps,
        "num_probes": settings.probes,
        "num_classes": inputs.num_classes if inputs.num_classes and inputs.num_classes < n else None,
        "seed": settings.seed,
    }
    report = analyze_curvature(
        op,
        k_bottom=k_bottom,
        trace_matvecs=settings.trace_matvecs,
        gradient=gradient,
        progress=progress,
        label="final",
        **options,
    )
    compare = settings.compare
    if compare == "auto":
        # Seed 004 compares the Hessian's top subspace with the gradient second moment's.
        compare = "gradcov" if settings.model is None and settings.matrix != "gradcov" else "none"
    extra = {"k_bottom": k_bottom, "options": options, "loss": loss, "gradient": gradient, "compare": compare}
    return op, report, extra


def _compare(
    settings: AnalyzeSettings, inputs: _Inputs, report: Any, name: str, progress: ProgressFactory
) -> tuple[dict[str, Any], Any]:
    """Top-k of a second matrix and the principal angles to the main matrix's top-k."""
    from ..algorithms import eigsh
    from ._matrices import curvature_operator
    from ._subspace import principal_angles

    other = curvature_operator(inputs.model, inputs.loss_fn, inputs.train, name, cache_graphs="auto")
    bar = progress(f"top-{settings.k} eigenvalues of {name}", None)
    try:
        top = eigsh(CountingOperator(other, bar), settings.k, which="LA", seed=settings.seed)
    finally:
        bar.close()
    angles = principal_angles(report.top.eigenvectors[:, : settings.k], top.eigenvectors)
    summary = {
        "matrix": name,
        "top": {
            "eigenvalues": top.eigenvalues,
            "residual_norms": top.residual_norms,
            "converged": top.converged,
            "num_matvecs": top.num_matvecs,
        },
        "principal_angles": {"cosines": angles.cosines, "degrees": angles.degrees, "overlap": angles.overlap},
    }
    return summary, angles


def _landscape(
    settings: AnalyzeSettings, inputs: _Inputs, report: Any, extra: dict[str, Any], progress: ProgressFactory
) -> dict[str, Any]:
    """Loss along v1, v2 and the bottom eigenvector, and on the (v1, v2) plane."""
    import torch

    from ._landscape import loss_along, loss_surface

    lam1 = report.lambda_max
    # Steps up to ±r with ½ λ₁ r² = 2: the quadratic model predicts a rise of 2 along v1.
    radius = 2.0 / math.sqrt(lam1) if lam1 > 0 else 1.0
    sets = {"train": inputs.train} if inputs.heldout is None else {"train": inputs.train, "heldout": inputs.heldout}
    top = report.top
    curves, quadratic, surface = [], [], None
    if settings.landscape_points > 0:
        steps = np.linspace(-radius, radius, max(settings.landscape_points, 2))
        directions = [
            (f"v{i + 1} (λ={top.eigenvalues[i]:.3g})", top.eigenvectors[:, i], top.eigenvalues[i])
            for i in range(min(2, settings.k))
        ]
        if report.bottom is not None:
            lam = report.bottom.eigenvalues[0]
            directions.append((f"v_min (λ={lam:.3g})", report.bottom.eigenvectors[:, 0], lam))
        bar = progress("loss along eigenvectors", len(directions) * steps.size)
        for label, v, lam in directions:
            curves.append(loss_along(inputs.model, inputs.loss_fn, sets, v, steps, label=label, progress=bar.update))
            quadratic.append((extra["loss"], float(torch.dot(extra["gradient"], v)), float(lam)))
        bar.close()
    if settings.surface_points > 1 and settings.k >= 2:
        grid = np.linspace(-radius, radius, settings.surface_points)
        bar = progress("loss surface (v1, v2)", grid.size**2)
        surface = loss_surface(
            inputs.model,
            inputs.loss_fn,
            {"train": inputs.train},
            top.eigenvectors[:, 0],
            top.eigenvectors[:, 1],
            grid,
            grid,
            labels=("v1", "v2"),
            progress=bar.update,
        )
        bar.close()
    return {"radius": radius, "curves": curves, "quadratic": quadratic, "surface": surface}


def _track(
    settings: AnalyzeSettings,
    inputs: _Inputs,
    checkpoints: list[tuple[str, Any]],
    report: Any,
    extra: dict[str, Any],
    progress: ProgressFactory,
) -> Any:
    """The earlier checkpoints, analyzed with the main run's settings, and the final model as the last row.

    To keep the run short the earlier checkpoints skip the trace and find one bottom
    eigenvalue; the density (same steps, probes and seed) and the top eigenvalues are
    computed exactly as for the final model, so the rows compare like with like.
    """
    from ._tracking import Tracking, track

    final_state = {k: v.detach().clone() for k, v in inputs.model.state_dict().items()}
    try:
        earlier = track(
            inputs.model,
            inputs.loss_fn,
            inputs.train,
            [c for _, c in checkpoints],
            labels=[name for name, _ in checkpoints],
            matrix=settings.matrix,
            operator_options={"cache_graphs": "auto"},
            reference=final_state,
            progress=progress,
            k_bottom=1 if extra["k_bottom"] else 0,
            trace_matvecs=0,
            **extra["options"],
        )
    except (OSError, ValueError) as exc:
        raise JobError(f"--track: {one_line(exc)}") from exc
    final_label = f"epoch {settings.epochs}" if settings.model is None else "final"
    return Tracking(
        labels=(*earlier.labels, final_label),
        reports=(*earlier.reports, report),
        extras=(*earlier.extras, {"loss": extra["loss"], "normalized_inner_product": float("nan")}),
    )


def _figures(
    out: OutputDir,
    settings: AnalyzeSettings,
    report: Any,
    landscape: dict[str, Any],
    angles: Any,
    tracking: Any,
    progress: ProgressFactory,
) -> dict[str, list[str]]:
    """Every figure of the run, as PNG and SVG in the staging folder."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return {}  # the plot extra is not installed: results.json only
    from . import _plots

    matrix = MATRIX_NAMES[settings.matrix]
    jobs: list[tuple[str, Callable[[], Any]]] = [
        ("density", lambda: _plots.plot_density(report.density, title=f"{matrix} spectral density (SLQ, log scale)")),
        ("stem", lambda: _plots.plot_stem(report.density, title=f"{matrix}: SLQ nodes and weights")),
    ]
    if landscape["curves"]:
        jobs.append(
            (
                "loss_along_eigenvectors",
                lambda: _plots.plot_loss_curves(landscape["curves"], quadratic=landscape["quadratic"]),
            )
        )
    if landscape["surface"] is not None:
        jobs.append(("loss_surface", lambda: _plots.plot_loss_surface(landscape["surface"])))
    if angles is not None:
        other = MATRIX_NAMES[settings.compare if settings.compare != "auto" else "gradcov"]
        title = f"top-{settings.k} {matrix} vs {other}: principal angles"
        jobs.append(("principal_angles", lambda: _plots.plot_principal_angles(angles, title=title)))
    if tracking is not None:
        densities = dict(zip(tracking.labels, (r.density for r in tracking.reports), strict=True))
        jobs.append(("tracking", lambda: _plots.plot_tracking(tracking)))
        jobs.append(("densities", lambda: _plots.plot_densities(densities, title=f"{matrix} density over training")))
    bar = progress("figures", len(jobs))
    written: dict[str, list[str]] = {}
    try:
        for name, make in jobs:
            paths = _plots.save_figure(make(), out.file(name))
            written[name] = [p.name for p in paths]
            bar.update(1)
    finally:
        bar.close()
    return written


# ---- bookkeeping -------------------------------------------------------------------------


def _fit(landscape: dict[str, Any]) -> dict[str, Any]:
    """Train accuracy and held-out loss/accuracy at the trained parameters (t = 0 of the v1 curve)."""
    out: dict[str, Any] = {"train_accuracy": None, "heldout": None}
    if not landscape["curves"]:
        return out
    curve = landscape["curves"][0]
    mid = int(np.argmin(np.abs(curve.steps)))
    if "train" in curve.accuracy:
        out["train_accuracy"] = float(curve.accuracy["train"][mid])
    if "heldout" in curve.loss:
        out["heldout"] = {"loss": float(curve.loss["heldout"][mid])}
        if "heldout" in curve.accuracy:
            out["heldout"]["accuracy"] = float(curve.accuracy["heldout"][mid])
    return out


def _matvecs(report: Any, compare: dict[str, Any] | None, tracking: Any) -> dict[str, int]:
    counts = {f"analysis.{k}": int(v) for k, v in report.num_matvecs.items()}
    if compare is not None:
        counts["compare"] = int(compare["top"]["num_matvecs"])
    if tracking is not None:
        counts["tracking"] = int(sum(sum(r.num_matvecs.values()) for r in tracking.reports[:-1]))
    counts["total"] = sum(counts.values())
    return counts


def _num_samples(batches: list[Any]) -> int:
    from ..adapters.torch._data import batch_size

    return sum(batch_size(targets, i) for i, (_, targets) in enumerate(batches))


def _versions() -> dict[str, str]:
    import scipy
    import torch

    from .. import __version__

    out = {
        "eigenscope": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
        "platform": platform.platform(),
    }
    with contextlib.suppress(ImportError):
        import matplotlib

        out["matplotlib"] = matplotlib.__version__
    return out


def _device_info(device: Any) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"device": str(device), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
    else:
        info["name"] = platform.processor() or platform.machine()
        info["cpu_count"] = os.cpu_count()
    return info
