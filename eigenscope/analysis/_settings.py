"""The options of ``eigenscope analyze``, and the values derived from them alone."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from ._loading import JobError
from ._matrices import MATRICES, matrix_name

DEFAULT_OUT = "eigenscope-out"


@dataclass(frozen=True)
class AnalyzeSettings:
    """The options of ``eigenscope analyze`` (flags, config-file keys and their defaults).

    ``matrix`` and ``compare`` take the names of :data:`eigenscope.adapters.KINDS`; an old
    spelling (``"gradcov"``) is replaced by the registry's name on construction.
    """

    model: str | None = None
    checkpoint: str | None = None
    data: str | None = None
    heldout: str | None = None
    loss: str = "cross_entropy"
    matrix: str = "hessian"
    compare: str = "auto"
    k: int = 10
    k_bottom: int | None = None
    steps: int = 80
    probes: int = 2
    trace_matvecs: int = 99
    num_classes: int | None = None
    epochs: int = 12
    track: list[str] = field(default_factory=list)
    track_epochs: list[int] = field(default_factory=lambda: [0, 1])
    landscape_points: int = 41
    surface_points: int = 15
    seed: int = 0
    device: str = "auto"
    dtype: str | None = None
    threads: int | None = None
    out: str = DEFAULT_OUT
    plots: bool = True
    quiet: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "matrix", matrix_name(self.matrix))
        object.__setattr__(self, "compare", matrix_name(self.compare))

    @property
    def demo(self) -> bool:
        """Whether the run is the built-in demo (no ``--model``)."""
        return self.model is None

    def validate(self) -> None:
        """Raise :class:`JobError` for values out of range."""
        if self.matrix not in MATRICES:
            raise JobError(f"--matrix must be one of {', '.join(MATRICES)}, got {self.matrix!r}")
        if self.compare not in ("auto", "none", *MATRICES):
            raise JobError(f"--compare must be auto, none or one of {', '.join(MATRICES)}, got {self.compare!r}")
        for name, low in (("k", 1), ("steps", 2), ("probes", 1), ("threads", 1), ("epochs", 0)):
            value = getattr(self, name)
            if name == "threads" and value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise JobError(f"--{name.replace('_', '-')} must be an integer >= {low}, got {value!r}")
        for name in ("k_bottom", "trace_matvecs", "landscape_points", "surface_points"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise JobError(f"--{name.replace('_', '-')} must be an integer >= 0, got {value!r}")
        classes = self.num_classes
        if classes is not None and (not isinstance(classes, int) or isinstance(classes, bool)):
            # its range, [1, number of classes], is checked once the model is loaded
            raise JobError(f"--num-classes must be an integer, got {classes!r}")
        if not all(isinstance(e, int) and not isinstance(e, bool) and e >= 0 for e in self.track_epochs):
            raise JobError(f"--track-epochs must be integers >= 0, got {self.track_epochs!r}")
        if self.trace_matvecs and self.trace_matvecs < 3:
            raise JobError(f"--trace-matvecs must be 0 or at least 3, got {self.trace_matvecs}")
        if not isinstance(self.out, str) or not self.out:
            raise JobError(f"--out must name a directory, got {self.out!r}")
        if self.dtype not in (None, "float32", "float64"):
            raise JobError(f"--dtype must be float32 or float64, got {self.dtype!r}")
        if self.demo and (self.data is not None or self.checkpoint is not None or self.track):
            raise JobError("--data, --checkpoint and --track need --model (without --model the built-in demo runs)")
        if not self.demo and self.data is None:
            raise JobError("--model needs --data module:factory returning (inputs, targets) batches")

    def num_threads(self) -> int:
        """``--threads``, else 1 for the built-in demo and 2 for a user's model.

        The demo's 3,658-parameter CNN gains nothing from a second thread: on two cores its
        Hessian products took twice the CPU time with 2 threads than with 1 (thread
        synchronization outweighs kernels this small), and far longer when another process
        kept the cores busy. Larger models do gain, so theirs default to 2.
        """
        if self.threads is not None:
            return self.threads
        return 1 if self.demo else min(2, os.cpu_count() or 1)

    def compare_matrix(self) -> str | None:
        """The second matrix to compare with, ``auto`` resolved; None for no comparison.

        ``auto``: the gradient second moment for the demo (seed 004 compares the Hessian's top
        subspace with it), unless it is the main matrix; nothing for a user's model.
        """
        compare = self.compare
        if compare == "auto":
            compare = "gradient_covariance" if self.demo and self.matrix != "gradient_covariance" else "none"
        return None if compare == "none" else compare

    def bottom_pairs(self, n: int) -> int:
        """``--k-bottom``, else 3 for the Hessian and 0 for the PSD matrices (GGN, M); at most ``n − 1``."""
        if self.k_bottom is not None:
            return self.k_bottom
        return min(3 if self.matrix == "hessian" else 0, n - 1)

    def check_sizes(self, n: int, classes: int | None) -> None:
        """Refuse ``--k``, ``--k-bottom`` and ``--num-classes`` that do not fit the model.

        Checked before training and before anything is written, so a typo costs nothing.
        ``n`` is the number of parameters; ``classes`` the number of classes read off the
        model's outputs (None when the targets are not class labels or unknown yet).
        """
        if n == 0:
            return  # no trainable parameter: building the operator says so
        for flag, value in (("--k", self.k), ("--k-bottom", self.k_bottom)):
            if value is not None and value >= n:
                raise JobError(f"{flag} {value} must be smaller than the number of parameters ({n})")
        wanted = self.num_classes
        if wanted is None:
            return
        if classes is not None and classes < n:
            high, why = classes, f"the model has {classes} outputs per sample"
        else:
            high, why = n - 1, f"it must be smaller than the number of parameters ({n})"
        if not 1 <= wanted <= high:
            raise JobError(f"--num-classes {wanted} is outside the allowed range [1, {high}]: {why}")

    def to_json(self, **resolved: Any) -> dict[str, Any]:
        """Every option, with the values the run resolved (``k_bottom``, ``num_classes``, ...) in place."""
        derived = {"threads": self.num_threads(), "compare": self.compare_matrix() or "none"}
        return {**dataclasses.asdict(self), **derived, **resolved}
