"""The output directory of a run: staged files, moved into place when the run succeeds."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ._loading import JobError


class OutputDir:
    """Files are written under ``out/.eigenscope-XXXX/`` and moved into ``out`` at the end,
    ``results.json`` last: a ``results.json`` in ``out`` always belongs to a finished run."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.created = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=".eigenscope-", dir=self.path))
        except OSError as exc:
            raise JobError(f"cannot write to output directory {path!r}: {exc.strerror or exc}") from exc
        self.files: list[str] = []

    def file(self, name: str) -> Path:
        """Where to write ``name`` for now."""
        self.files.append(name)
        return self.tmp / name

    def commit(self, results: dict[str, Any]) -> Path:
        """Write ``results.json`` and move every file into place."""
        final = self.path / "results.json"
        staged = self.tmp / "results.json"
        staged.write_text(json.dumps(results, indent=1, allow_nan=False) + "\n")
        if final.exists():
            final.unlink()  # no stale results.json next to new figures while moving
        for name in self.files:
            os.replace(self.tmp / name, self.path / name)
        os.replace(staged, final)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return final

    def abort(self) -> None:
        """Remove what this run wrote (and the folder itself if this run created it empty)."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.created:
            with contextlib.suppress(OSError):
                self.path.rmdir()


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
