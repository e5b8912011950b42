"""The seeds' experiments, one command each: ``eigenscope study NAME``.

Each study trains small models on synthetic data or data shipped with scikit-learn,
measures curvature spectra over training, and decides the seed's claims from the numbers
(reproduced / not reproduced / inconclusive at this scale, by a rule stated in the
report). It writes ``results.json``, PNG and SVG figures and a self-contained
``report.html``.

>>> from eigenscope.analysis import studies
>>> [s.name for s in studies.list_studies()][:2]
['hessian-vs-second-moment', 'normalization-and-residuals']
>>> results = studies.run_study("diagonal-vs-spectrum", out="out/diag", quick=True)   # doctest: +SKIP
>>> results["verdicts"]                                                              # doctest: +SKIP

Each study is also a function of this module, named with underscores:
``studies.hessian_vs_second_moment(out=..., quick=..., seed=..., device=...)``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import shlex
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

from .._loading import JobError
from .._output import OutputDir, jsonable
from .._progress import ProgressFactory, no_progress
from ._framework import FigureRecord, Study, StudyContext, StudyOutput, Table
from ._report import format_study_summary, results_json, write_report
from ._verdicts import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, VERDICTS, Claim, Criterion, Measured

# name -> module holding ``STUDY``; the modules import torch only when a study runs.
_MODULES = {
    "hessian-vs-second-moment": "_hessian_vs_second_moment",
    "normalization-and-residuals": "_normalization_and_residuals",
    "true-vs-empirical": "_true_vs_empirical",
    "diagonal-vs-spectrum": "_diagonal_vs_spectrum",
    "optimizer-vs-curvature": "_optimizer_vs_curvature",
    "gradient-geometry": "_gradient_geometry",
}
NAMES = tuple(_MODULES)


def get_study(name: str) -> Study:
    """The study called ``name``; :class:`JobError` naming the known ones otherwise."""
    if name not in _MODULES:
        raise JobError(f"unknown study {name!r}; the studies are: {', '.join(NAMES)}")
    return importlib.import_module(f".{_MODULES[name]}", __name__).STUDY


def list_studies() -> list[Study]:
    """Every study, in the order of ``eigenscope study --list``."""
    return [get_study(name) for name in NAMES]


def run_study(
    name: str,
    *,
    out: str | None = None,
    quick: bool = False,
    seed: int = 0,
    device: str = "cpu",
    progress: ProgressFactory | None = None,
    stdout: TextIO | None = None,
    command: str | None = None,
    threads: int | None = 1,
) -> dict[str, Any]:
    """Run study ``name``; write ``results.json``, figures and ``report.html`` to ``out``.

    Parameters
    ----------
    name
        One of :data:`NAMES`.
    out
        The output directory (default ``eigenscope-study/NAME``). Replaced as a whole, only
        if it holds nothing but an earlier run's output.
    quick
        The reduced run (≤ 1 minute on 2 CPU cores): fewer replicates, epochs and steps.
        Its verdicts are computed the same way, on less evidence.
    seed
        Base seed of the replicates; the same seed gives the same numbers on one machine.
    device
        Torch device for the models and products (``"cpu"``, ``"cuda"``).
    progress
        A progress factory (default: none).
    stdout
        Where the summary goes (default: nowhere).
    command
        The command line recorded in the report (default: the equivalent ``eigenscope study`` call).
    threads
        CPU threads for torch and for the BLAS/LAPACK behind NumPy and SciPy during the run
        (``None``: leave both as they are). One by default: the studies' networks are small
        enough that a second thread gains little, and on a shared machine oversubscribed
        BLAS and OpenMP threads make dense eigendecompositions and products many times slower.

    Returns
    -------
    dict
        What ``results.json`` holds, plus ``results_path`` and ``report_path``.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise JobError(f"--seed must be a non-negative integer, got {seed!r}")
    study = get_study(name)
    folder = OutputDir(out or f"eigenscope-study/{name}")
    if command is None:
        parts = ["eigenscope", "study", name, "--seed", str(seed), *(["--quick"] if quick else [])]
        command = shlex.join(parts)
    ctx = StudyContext(quick=quick, seed=seed, device=device, out=folder, progress=progress or no_progress)
    start = time.perf_counter()
    try:
        with _limited_threads(threads):
            output = study.run(ctx)
        if not isinstance(output, StudyOutput) or not output.claims:
            raise RuntimeError(f"study {name!r} returned no claims")
        run = {
            "quick": quick,
            "seed": seed,
            "device": device,
            "seconds": time.perf_counter() - start,
            "threads": threads,
            "command": command,
            "python": sys.version.split()[0],
        }
        results = jsonable(results_json(study, output, ctx.figures, run))
        write_report(results, folder.staging)
        path = folder.commit(results)
    except BaseException:
        folder.abort()
        raise
    results["results_path"] = str(path)
    results["report_path"] = str(path.with_name("report.html"))
    if stdout is not None:
        stdout.write(format_study_summary(results, results["report_path"]) + "\n")
        stdout.flush()
    return results


@contextlib.contextmanager
def _limited_threads(threads: int | None) -> Iterator[None]:
    """torch's and the BLAS libraries' thread counts set to ``threads`` inside the block."""
    if threads is None:
        yield
        return
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise JobError(f"--threads must be a positive integer, got {threads!r}")
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # scikit-learn brings it; without it only torch is limited
            yield
        else:
            with threadpool_limits(limits=threads):
                yield
    finally:
        torch.set_num_threads(before)


def __getattr__(attr: str) -> Any:
    name = attr.replace("_", "-")
    if name in _MODULES:
        fn = functools.partial(run_study, name)
        functools.update_wrapper(fn, run_study)
        fn.__doc__ = f"Run the study {name!r} (see :func:`run_study`; every argument but the name)."
        return fn
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


__all__ = [
    "INCONCLUSIVE",
    "NAMES",
    "NOT_REPRODUCED",
    "REPRODUCED",
    "VERDICTS",
    "Claim",
    "Criterion",
    "FigureRecord",
    "JobError",
    "Measured",
    "Study",
    "StudyContext",
    "StudyOutput",
    "Table",
    "get_study",
    "list_studies",
    "run_study",
]
