"""Progress reporting for long loops: tqdm bars when wanted and installed, silence otherwise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .. import LinearOperator
from ..backends import Array


class Bar(Protocol):
    """The part of ``tqdm`` eigenscope uses."""

    def update(self, n: int = 1) -> Any:
        """Advance the bar by ``n``."""
        ...

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> Any:
        """Show ``s`` after the bar."""
        ...

    def close(self) -> Any:
        """Finish the bar."""
        ...


ProgressFactory = Callable[[str, "int | None"], Bar]
"""``factory(description, total) -> Bar``: one bar per stage (``total`` None when unknown)."""


class NullBar:
    """A bar that shows nothing."""

    def update(self, n: int = 1) -> None:
        """Do nothing."""

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""


def no_progress(description: str, total: int | None = None) -> Bar:
    """The silent :data:`ProgressFactory`."""
    return NullBar()


def tqdm_progress(*, file: Any = None, leave: bool = False) -> ProgressFactory:
    """A :data:`ProgressFactory` drawing ``tqdm`` bars (to stderr by default).

    Falls back to :func:`no_progress` when tqdm is not installed (it is an optional
    dependency, in the ``cli`` extra).
    """
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return no_progress

    def factory(description: str, total: int | None = None) -> Bar:
        # mininterval: a redirected stderr (a log file) gets a line every half second at most.
        return tqdm(
            total=total, desc=description, file=file, leave=leave, dynamic_ncols=True, unit="it", mininterval=0.5
        )

    return factory


class CountingOperator(LinearOperator):
    """``A`` itself, reporting every product to a progress bar (a block of b counts b).

    Lets a bar follow the matrix-vector products of Lanczos, Hutch++ or SLQ without
    those algorithms knowing about progress bars.
    """

    def __init__(self, op: LinearOperator, bar: Bar) -> None:
        super().__init__(shape=op.shape, dtype=op.dtype, device=op.device, xp=op.xp, symmetric=op.symmetric)
        self.op = op
        self.bar = bar
        self.num_matvecs = 0

    def _matmat(self, x: Array) -> Array:
        self.num_matvecs += x.shape[1]
        compiling = getattr(self.op, "compile_seconds", None)
        y = self.op.matmat(x)
        now = getattr(self.op, "compile_seconds", None)
        if now is not None and now != compiling:
            # Shown apart from the products' rate: a compilation is a one-off cost.
            self.bar.set_postfix_str(f"compiled products in {now:.1f} s")
        self.bar.update(x.shape[1])
        return y

    def _rmatmat(self, y: Array) -> Array:
        self.num_matvecs += y.shape[1]
        out = self.op.rmatmat(y)
        self.bar.update(y.shape[1])
        return out
