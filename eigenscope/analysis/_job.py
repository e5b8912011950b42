"""What ``eigenscope analyze`` does: load or train a model, analyze its curvature, write results.

The command-line layer (:mod:`eigenscope.cli`) turns flags and a config file into an
:class:`~eigenscope.analysis.AnalyzeSettings` and calls :func:`run_analyze`. The stages, in
order, each in its own module and each returning a frozen result that serializes itself:

1. inputs: model, data, loss (:mod:`._job_inputs`);
2. training, the built-in demo only (:mod:`._job_training`);
3. the curvature analysis of the main matrix, and 4. a second matrix's top subspace
   (:mod:`._job_curvature`);
5. the loss along eigenvectors (:mod:`._job_landscape`);
6. earlier checkpoints (:mod:`._job_tracking`);
7. figures (:mod:`._job_figures`);

then ``results.json``, assembled from those results (:mod:`._job_results`). The settings
go down into the stages; only results come back.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from collections.abc import Iterator
from typing import Any, TextIO

from .. import EigenscopeWarning
from ._job_curvature import analyze, compare
from ._job_figures import Figures, draw_figures
from ._job_html import write_analyze_report
from ._job_inputs import load_inputs
from ._job_landscape import explore
from ._job_results import AnalyzeResults, Environment
from ._job_tracking import track_checkpoints
from ._job_training import train_demo
from ._output import OutputDir
from ._progress import ProgressFactory, no_progress, tqdm_progress
from ._settings import AnalyzeSettings
from ._summary import format_summary


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
    torch.set_num_threads(settings.num_threads())
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


class _Clock:
    """Seconds per stage (a stage entered twice adds up)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    def total(self) -> float:
        """Seconds since the clock was made."""
        return time.perf_counter() - self.start


def _run(settings: AnalyzeSettings, progress: ProgressFactory, argv: list[str] | None) -> dict[str, Any]:
    clock = _Clock()
    with clock("setup"):
        inputs = load_inputs(settings)
        out = OutputDir(settings.out)  # after the inputs: a bad --model leaves no folder behind
    try:
        training = None
        checkpoints: tuple[tuple[str, Any], ...] = tuple((os.path.basename(p), p) for p in settings.track)
        if settings.demo:
            with clock("training"):
                training = train_demo(
                    inputs,
                    epochs=settings.epochs,
                    seed=settings.seed,
                    track_epochs=settings.track_epochs,
                    progress=progress,
                )
            checkpoints = training.checkpoints
        with clock("analysis"):
            curvature = analyze(inputs, settings, progress)
        comparison = None
        other = settings.compare_matrix()
        if other is not None:
            with clock("compare"):
                comparison = compare(inputs, curvature, other, k=settings.k, seed=settings.seed, progress=progress)
        with clock("landscape"):
            landscape = explore(
                inputs,
                curvature,
                points=settings.landscape_points,
                surface_points=settings.surface_points,
                k=settings.k,
                progress=progress,
            )
        tracking = None
        if checkpoints:
            final_label = f"epoch {settings.epochs}" if settings.demo else "final"
            with clock("tracking"):
                tracking = track_checkpoints(inputs, curvature, checkpoints, final_label=final_label, progress=progress)
        figures = Figures()
        if settings.plots:
            with clock("plots"):
                figures = draw_figures(out, curvature, comparison, landscape, tracking, k=settings.k, progress=progress)
        results = AnalyzeResults(
            command=("eigenscope", *(argv or ["analyze"])),
            settings=settings,
            environment=Environment.capture(inputs.device),
            training=training,
            curvature=curvature,
            comparison=comparison,
            landscape=landscape,
            tracking=tracking,
            figures=figures,
            timings=dict(clock.timings),
            total_time=clock.total(),
        ).to_json()
        write_analyze_report(results, out.staging)
        path = out.commit(results)
    except BaseException:
        out.abort()
        raise
    results["results_path"] = str(path)
    return results
