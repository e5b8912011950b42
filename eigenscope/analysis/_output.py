"""The output directory of a run, replaced as a whole when the run succeeds.

Every file of a run is written to a staging folder next to the output directory
(``PARENT/.NAME.staging-PID-XXXX``). At the end the previous directory is renamed aside
(``PARENT/.NAME.old-PID-XXXX``), the staging folder is renamed into place, and the
previous set is removed. Each rename is atomic, so ``NAME`` holds either the complete
previous set or the complete new one; SIGINT and SIGTERM wait until the swap is done.
A process killed outright (SIGKILL, power loss) between the two renames leaves no
``NAME`` but the aside copy: the next run on that directory puts the previous set back
(and removes staging folders of dead runs) before it starts.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ._loading import JobError

FIGURE_NAMES = (
    "density",
    "stem",
    "loss_along_eigenvectors",
    "loss_surface",
    "principal_angles",
    "tracking",
    "densities",
)
"""The figures ``eigenscope analyze`` writes (each as ``NAME.png`` and ``NAME.svg``)."""

# Files an operating system drops into a folder someone looked at: not worth refusing for.
_CLUTTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})

# Staging folders of this process that are not yet swapped in or removed.
_ACTIVE: set[Path] = set()


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM arriving in the block take effect when it ends.

    A rename half done or a staging folder half removed is worse than stopping a moment
    later. Python runs signal handlers in the main thread only, so elsewhere (and where
    a handler was installed outside Python) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if handler is None or handler == signal.SIG_IGN:
            continue
        previous[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(caught):
            signal.raise_signal(sig)


class OutputDir:
    """A run's output directory: files go to :attr:`staging`, :meth:`commit` swaps them in.

    Parameters
    ----------
    path
        The output directory. It may exist if it holds only an earlier run's output
        (``results.json`` and figures): that whole set is replaced. Missing parent
        directories are created (and removed again by :meth:`abort`).

    Raises
    ------
    JobError
        When ``path`` cannot be written, is the working directory or contains it, or
        holds files that are not eigenscope output (they would be deleted with the
        previous set).
    """

    def __init__(self, path: str) -> None:
        self.shown = Path(path)  # the path as the user wrote it, for messages and the summary
        self.path = Path(os.path.realpath(path))  # a symlinked directory is replaced where it lies
        self.committed = False
        _check_not_working_directory(self.path, path)
        self._created = _missing_ancestors(self.path)
        nearest = self._created[-1].parent if self._created else self.path.parent
        if not nearest.is_dir():
            raise JobError(f"cannot write to output directory {path!r}: {str(nearest)!r} is not a directory")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            recover(self.path)
            _check_replaceable(self.path, path)
            with signals_deferred():
                self.staging = Path(tempfile.mkdtemp(prefix=_prefix(self.path, "staging"), dir=self.path.parent))
                _ACTIVE.add(self.staging)
        except OSError as exc:
            self._remove_created()
            raise JobError(f"cannot write to output directory {path!r}: {exc.strerror or exc}") from exc
        except JobError:
            self._remove_created()
            raise

    def file(self, name: str) -> Path:
        """Where to write ``name`` during the run."""
        return self.staging / name

    def commit(self, results: dict[str, Any]) -> Path:
        """Write ``results.json`` and swap the staging folder in; return the path of ``results.json``."""
        (self.staging / "results.json").write_text(json.dumps(results, indent=1, allow_nan=False) + "\n")
        with signals_deferred():
            # Checked again: files put into the directory during the run would go with the old set.
            _check_replaceable(self.path, str(self.shown))
            _swap(self.staging, self.path, str(self.shown))
            self.committed = True
            _ACTIVE.discard(self.staging)
        return self.shown / "results.json"

    def abort(self) -> None:
        """Remove the staging folder (and the parent directories this run created); the output stays as it was."""
        with signals_deferred():
            _remove(self.staging)
            if not self.committed:
                self._remove_created()

    def _remove_created(self) -> None:
        for folder in self._created:  # deepest first; any that is not empty stays
            with contextlib.suppress(OSError):
                folder.rmdir()


def remove_staging() -> None:
    """Remove every staging folder of this process (a run stopped before it could clean up)."""
    with signals_deferred():
        for folder in list(_ACTIVE):
            _remove(folder)


def recover(path: Path) -> None:
    """Finish what dead runs on ``path`` left half done.

    The previous set renamed aside with no ``path`` in its place is put back; an aside
    copy next to a complete ``path`` and dead runs' staging folders are removed. Folders
    of live processes (another run on the same directory) are left alone.
    """
    if not path.parent.is_dir():
        return
    for entry in sorted(path.parent.iterdir()):
        kind, pid = _parse(entry.name, path)
        if kind is None or entry in _ACTIVE or _alive(pid):
            continue
        if kind == "old" and not path.exists():
            os.replace(entry, path)
        else:
            _remove(entry)


def _swap(staging: Path, path: Path, shown: str) -> None:
    """``staging`` becomes ``path``; the previous ``path``, if any, is removed."""
    aside = None
    if path.exists():
        aside = path.parent / f"{_prefix(path, 'old')}{secrets.token_hex(4)}"
        try:
            os.replace(path, aside)
        except OSError as exc:
            raise JobError(f"cannot replace output directory {shown!r}: {exc.strerror or exc}") from exc
    try:
        os.replace(staging, path)
    except OSError as exc:
        if aside is not None:
            os.replace(aside, path)
        raise JobError(f"cannot replace output directory {shown!r}: {exc.strerror or exc}") from exc
    if aside is not None:
        _remove(aside)


def _prefix(path: Path, kind: str) -> str:
    return f".{path.name}.{kind}-{os.getpid()}-"


def _parse(name: str, path: Path) -> tuple[str | None, int]:
    """``(kind, pid)`` of a staging or aside folder of ``path``, ``(None, 0)`` for anything else."""
    for kind in ("staging", "old"):
        head = f".{path.name}.{kind}-"
        if name.startswith(head):
            pid, _, _ = name[len(head) :].partition("-")
            if pid.isdigit():
                return kind, int(pid)
    return None, 0


def _alive(pid: int) -> bool:
    """Whether process ``pid`` (possibly this one) may still be using its folders."""
    if pid == os.getpid():
        return False  # this process's folders in use are in _ACTIVE
    if os.name == "nt":
        return True  # os.kill(pid, 0) would end the process there: keep its folders
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists but belongs to someone else
    return True


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    _ACTIVE.discard(folder)


def _missing_ancestors(path: Path) -> list[Path]:
    """The ancestors of ``path`` that do not exist yet, deepest first."""
    missing = []
    for folder in path.parents:
        if folder.exists():
            break
        missing.append(folder)
    return missing


def _check_not_working_directory(path: Path, shown: str) -> None:
    cwd = Path(os.path.realpath(os.getcwd()))
    if path == cwd or path in cwd.parents:
        raise JobError(
            f"--out {shown!r} is the working directory or contains it; the output directory is replaced "
            "as a whole, so name a directory of its own (e.g. eigenscope-out)"
        )


def _check_replaceable(path: Path, shown: str) -> None:
    """Refuse to replace a directory that holds more than an earlier run's output."""
    if not path.exists():
        return
    if not path.is_dir():
        raise JobError(f"cannot write to output directory {shown!r}: it is a file, not a directory")
    foreign = foreign_files(path)
    if foreign:
        listed = ", ".join(repr(name) for name in foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise JobError(
            f"--out {shown!r} holds files that are not eigenscope output ({listed}); the directory is "
            "replaced as a whole, so name a new or empty directory, or move those files"
        )


def foreign_files(path: Path) -> list[str]:
    """The entries of ``path`` that are not an earlier run's output, sorted."""
    owned = {
        "results.json",
        "report.html",
        *_CLUTTER,
        *(f"{name}.{ext}" for name in FIGURE_NAMES for ext in ("png", "svg")),
    }
    owned.update(_listed_figures(path / "results.json"))
    return sorted(
        entry.name
        for entry in path.iterdir()
        # .eigenscope-*: staging folders that older versions kept inside the output directory
        if entry.name not in owned and not (entry.name.startswith(".eigenscope-") and entry.is_dir())
    )


def _listed_figures(results: Path) -> set[str]:
    """The figure files an earlier ``results.json`` names (none if it cannot be read)."""
    try:
        figures = json.loads(results.read_text()).get("figures") or {}
        return {name for names in figures.values() for name in names if isinstance(name, str)}
    except (OSError, ValueError, AttributeError, TypeError):
        return set()


def jsonable(obj: Any) -> Any:
    """NaN/Inf -> None, NumPy -> Python, recursively."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj
