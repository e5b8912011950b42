"""The ``eigenscope`` command.

``eigenscope analyze`` with no arguments trains a small CNN on scikit-learn's 8×8 digits
and analyzes the Hessian of the trained model; with ``--model module:factory`` and
``--data module:factory`` it analyzes the user's own model. Options come from the command
line and from ``--config file.toml`` (same keys; the command line wins).

Errors in the input (an unknown module or factory, a checkpoint that does not match the
model, an empty data factory, an output directory that cannot be written, ...) are
reported as one line on stderr with exit status 1 (2 for a malformed command line);
``--traceback`` shows the full traceback instead. SIGINT (Ctrl-C) and SIGTERM stop the
command with one line on stderr and exit status 130 or 143; the output directory keeps the
previous run's results.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, TextIO

PROG = "eigenscope"

_CONFIG_KEYS = {
    "model": str,
    "checkpoint": str,
    "data": str,
    "heldout": str,
    "loss": str,
    "matrix": str,
    "compare": str,
    "k": int,
    "k_bottom": int,
    "steps": int,
    "probes": int,
    "trace_matvecs": int,
    "num_classes": int,
    "epochs": int,
    "track": list,
    "track_epochs": list,
    "landscape_points": int,
    "surface_points": int,
    "seed": int,
    "device": str,
    "dtype": str,
    "threads": int,
    "out": str,
    "plots": bool,
    "quiet": bool,
}


class CLIError(Exception):
    """A one-line error for the user."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so ``main`` controls the message and status."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise _UsageError(message)


class _UsageError(Exception):
    pass


class _Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so that every cleanup on the way out runs.

    A BaseException: ``except Exception`` around a user's factory must not turn it into
    an error message about the factory.
    """


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``eigenscope`` command."""
    from .adapters import KINDS
    from .analysis import OLD_MATRIX_NAMES

    parser = _Parser(
        prog=PROG,
        description="Spectra of Hessians, Gauss-Newton matrices and gradient covariances of neural networks.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    a = sub.add_parser(
        "analyze",
        help="curvature analysis of a model (a built-in demo without arguments)",
        description=(
            "Top and bottom eigenvalues, trace, spectral density and curvature metrics of a model's Hessian "
            "(or GGN / gradient second moment), the loss along eigenvectors, plots and results.json. "
            "Without --model: a small CNN trained on scikit-learn's 8x8 digits."
        ),
        argument_default=argparse.SUPPRESS,  # unset flags do not override the config file
    )
    g = a.add_argument_group("model and data")
    g.add_argument("--model", metavar="MODULE:FACTORY", help="callable returning the torch.nn.Module")
    g.add_argument("--checkpoint", metavar="FILE", help="state dict to load into the model (torch.save'd)")
    g.add_argument("--data", metavar="MODULE:FACTORY", help="callable returning an iterable of (inputs, targets)")
    g.add_argument("--heldout", metavar="MODULE:FACTORY", help="held-out batches for the loss along eigenvectors")
    g.add_argument("--loss", metavar="NAME", help="cross_entropy (default), mse, bce (with logits) or module:function")
    g.add_argument("--track", nargs="+", metavar="FILE", help="earlier checkpoints to analyze as well (in order)")
    g.add_argument("--epochs", type=int, metavar="N", help="training epochs of the built-in demo (default 12)")
    g.add_argument(
        "--track-epochs",
        type=int,
        metavar="N",
        nargs="*",
        dest="track_epochs",
        help="demo epochs to track (default 0 1)",
    )
    g = a.add_argument_group("analysis")
    matrices = (*KINDS, *OLD_MATRIX_NAMES)  # the registry's names, and old spellings still accepted
    old_names = "; ".join(f"{old} is the old name of {new}" for old, new in OLD_MATRIX_NAMES.items())
    g.add_argument(
        "--matrix",
        choices=matrices,
        metavar="MATRIX",
        help=f"the matrix: {', '.join(KINDS)} (default hessian; {old_names})",
    )
    g.add_argument(
        "--compare",
        choices=("auto", "none", *matrices),
        metavar="MATRIX",
        help="second matrix whose top-k subspace is compared by principal angles: auto, none or a --matrix "
        "(auto: gradient_covariance for the demo, none otherwise)",
    )
    g.add_argument("--k", type=int, metavar="N", help="top eigenpairs (default 10)")
    g.add_argument(
        "--k-bottom",
        type=int,
        metavar="N",
        dest="k_bottom",
        help="bottom eigenpairs (default 3 for hessian, 0 for the positive semidefinite ggn and gradient_covariance)",
    )
    g.add_argument("--steps", type=int, metavar="N", help="Lanczos steps of the density (default 80)")
    g.add_argument("--probes", type=int, metavar="N", help="probe vectors of the density (default 2)")
    g.add_argument(
        "--trace-matvecs", type=int, metavar="N", dest="trace_matvecs", help="Hutch++ budget, 0 to skip (default 99)"
    )
    g.add_argument(
        "--num-classes",
        type=int,
        metavar="N",
        dest="num_classes",
        help="K of the outlier ratio (default: from outputs)",
    )
    g.add_argument(
        "--landscape-points", type=int, metavar="N", dest="landscape_points", help="points per loss curve (default 41)"
    )
    g.add_argument(
        "--surface-points", type=int, metavar="N", dest="surface_points", help="grid of the loss surface, 0 to skip"
    )
    g.add_argument("--seed", type=int, metavar="N", help="seeds training, probes and starts (default 0)")
    g = a.add_argument_group("run")
    g.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    g.add_argument("--dtype", choices=("float32", "float64"), help="cast the model (default: keep its dtype)")
    g.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default 1 for the demo, 2 otherwise)")
    g.add_argument("--out", metavar="DIR", help="output directory (default eigenscope-out)")
    g.add_argument("--config", metavar="FILE", help="TOML file with the same keys (flags override it)")
    g.add_argument("--no-plots", action="store_false", dest="plots", help="no figures (results.json, report.html)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    g.add_argument("--traceback", action="store_true", help="show the full traceback of an error")
    _add_study_parser(sub)
    return parser


def _add_study_parser(sub: Any) -> None:
    from .analysis.studies import NAMES

    s = sub.add_parser(
        "study",
        help="one of the seeds' experiments, with an HTML report that says what reproduced",
        description=(
            "Run a study: train small models, measure curvature spectra, decide the seed's claims from the "
            "numbers (reproduced / not reproduced / inconclusive at this scale) and write results.json, "
            "figures and a self-contained report.html. --list shows the studies."
        ),
    )
    s.add_argument("name", nargs="?", choices=NAMES, metavar="NAME", help=f"the study: {', '.join(NAMES)}")
    s.add_argument("--list", action="store_true", dest="list_studies", help="list the studies and exit")
    s.add_argument("--out", metavar="DIR", help="output directory (default eigenscope-study/NAME)")
    s.add_argument("--quick", action="store_true", help="the reduced run (about a minute): less evidence")
    s.add_argument("--seed", type=int, default=0, metavar="N", help="base seed of the replicates (default 0)")
    s.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    s.add_argument(
        "--threads", type=int, default=1, metavar="N", help="CPU threads of torch and of NumPy/SciPy's BLAS (default 1)"
    )
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.add_argument("--traceback", action="store_true", help="show the full traceback of an error")


def _read_toml(path: str) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise CLIError("--config needs Python 3.11+ (tomllib) or the tomli package") from None
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise CLIError(f"--config: file {path!r} does not exist") from None
    except OSError as exc:
        raise CLIError(f"--config: cannot read {path!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        # A binary file: the decoder's message would quote bytes of it.
        raise CLIError(f"--config: {path!r} is not a TOML file (it is not UTF-8 text)") from None
    except tomllib.TOMLDecodeError as exc:
        raise CLIError(f"--config: {path!r} is not valid TOML: {exc}") from None


def load_config(path: str) -> dict[str, Any]:
    """The settings in a TOML file: top-level keys, or the ``[analyze]`` table.

    Keys are the long option names with ``-`` or ``_`` (``k-bottom`` or ``k_bottom``).
    Relative paths in ``checkpoint``, ``track`` and ``.py`` factories are taken relative
    to the working directory, as on the command line.
    """
    raw = _read_toml(path)
    if isinstance(raw.get("analyze"), dict):
        raw = raw["analyze"]
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in _CONFIG_KEYS:
            known = ", ".join(sorted(k.replace("_", "-") for k in _CONFIG_KEYS))
            raise CLIError(f"--config: unknown key {key!r} in {path!r}; known keys: {known}")
        kind = _CONFIG_KEYS[name]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is list:
            ok = isinstance(value, list)
            if ok and name == "track":
                value = [str(v) for v in value]
        if not ok:
            raise CLIError(f"--config: {key!r} must be {kind.__name__}, got {type(value).__name__} {value!r}")
        out[name] = value
    return out


def _settings(ns: argparse.Namespace) -> Any:
    from .analysis import AnalyzeSettings

    values: dict[str, Any] = {}
    config = getattr(ns, "config", None)
    if config is not None:
        values.update(load_config(config))
    for name in _CONFIG_KEYS:
        if hasattr(ns, name):
            values[name] = getattr(ns, name)
    return AnalyzeSettings(**values)


def _fail(message: str, stderr: TextIO, status: int = 1) -> int:
    stderr.write(f"{PROG}: error: {' '.join(str(message).split())}\n")
    stderr.flush()
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``eigenscope`` command; return the exit status (0 on success).

    Parameters
    ----------
    argv
        The arguments after the program name (default ``sys.argv[1:]``).
    """
    try:
        # First of all, before the slow imports (torch takes seconds): a Ctrl-C at any
        # moment from here on is one line and status 130, never a traceback.
        previous = _catch_signals()
        try:
            return _main(argv)
        finally:
            _restore_signals(previous)
    except KeyboardInterrupt:
        return _stopped("interrupted", 130)
    except _Terminated:
        return _stopped("terminated", 143)


def _catch_signals() -> dict[int, Any]:
    """SIGINT raises KeyboardInterrupt and SIGTERM :class:`_Terminated`; return the handlers replaced.

    A signal the parent process ignores (``nohup``, a background job) stays ignored; from
    a thread other than the main one, handlers cannot be set and stay as they are.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Any] = {}
    for sig, handler in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, _raise_terminated)):
        current = signal.getsignal(sig)
        if current is not None and current != signal.SIG_IGN:
            previous[sig] = signal.signal(sig, handler)
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated


def _stopped(what: str, status: int) -> int:
    """Clean up after SIGINT or SIGTERM and say so in one line."""
    # The run removes its staging folder on the way out; this catches a signal that came
    # in the moment before it could.
    analysis = sys.modules.get(f"{__package__}.analysis")
    if analysis is not None:
        analysis.remove_staging()
    sys.stderr.write(f"{PROG}: {what}\n")
    sys.stderr.flush()
    return status


def _main(argv: Sequence[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    stdout, stderr = sys.stdout, sys.stderr
    parser = build_parser()
    try:
        ns = parser.parse_args(args)
    except _UsageError as exc:
        return _fail(f"{exc} (see '{PROG} --help')", stderr, 2)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if ns.version:
        from . import __version__

        stdout.write(f"{PROG} {__version__}\n")
        return 0
    if ns.command is None:
        parser.print_help(stdout)
        return 0
    show_traceback = getattr(ns, "traceback", False) or bool(os.environ.get("EIGENSCOPE_TRACEBACK"))
    if "torch" not in sys.modules:
        # OpenMP threads that spin while waiting make a shared machine crawl (with CPU-bound
        # neighbours, 30 ms Hessian products of the demo took 1.6 s with 2 spinning threads
        # and 0.06 s with passive ones). Only effective before torch (and its OpenMP
        # runtime) is loaded; a user's own OMP_WAIT_POLICY wins.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if ns.command == "study":
        return _study(ns, args, stdout, stderr, show_traceback)
    try:
        import torch  # noqa: F401

        from .analysis import JobError, run_analyze
    except ImportError as exc:
        return _fail(f"'{PROG} analyze' needs PyTorch: pip install 'eigenscope[torch,plot,cli]' ({exc})", stderr)
    return _guarded(lambda: run_analyze(_settings(ns), stdout=stdout, argv=args), JobError, stderr, show_traceback)


def _guarded(job: Any, job_error: type[Exception], stderr: TextIO, show_traceback: bool) -> int:
    """Run ``job()``; return 0, or 1 with one line on stderr (``--traceback``: raise instead).

    Bad input (:class:`CLIError`, ``job_error``) is reported by its message. Anything else is
    either a bug or a problem deep in the user's model: its type and message, in one line.
    """
    try:
        job()
    except (CLIError, job_error) as exc:
        if show_traceback:
            raise
        return _fail(str(exc), stderr)
    except Exception as exc:
        if show_traceback:
            raise
        return _fail(f"{type(exc).__name__}: {exc} (run with --traceback for details)", stderr)
    return 0


def _study(ns: argparse.Namespace, args: list[str], stdout: TextIO, stderr: TextIO, show_traceback: bool) -> int:
    from .analysis.studies import list_studies

    if ns.list_studies:
        for study in list_studies():
            stdout.write(f"{study.name:<28} {study.title} ({study.source})\n")
        return 0
    if ns.name is None:
        return _fail(f"'{PROG} study' needs a study name or --list (see '{PROG} study --help')", stderr, 2)
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        return _fail(f"'{PROG} study' needs PyTorch: pip install 'eigenscope[torch,plot,cli]' ({exc})", stderr)
    from .analysis import JobError, tqdm_progress
    from .analysis.studies import run_study

    progress = None if ns.quiet else tqdm_progress()

    def job() -> None:
        run_study(
            ns.name,
            out=ns.out,
            quick=ns.quick,
            seed=ns.seed,
            device=ns.device,
            progress=progress,
            stdout=stdout,
            command=shlex.join([PROG, *args]),
            threads=ns.threads,
        )

    return _guarded(job, JobError, stderr, show_traceback)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
