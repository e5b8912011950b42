"""The options of the JAX constructors: the shared ones and the JAX adapter's own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jax.sharding import Mesh

from .._batches import BatchFormat, TargetsArg
from .._options import CurvatureOptions


@dataclass(frozen=True, kw_only=True)
class JaxOptions(CurvatureOptions):
    """The shared :class:`~eigenscope.adapters.CurvatureOptions` and the JAX adapter's own:
    ``compiler_options`` (for ``jax.jit``), ``mesh`` and ``data_axis`` (data parallelism),
    ``allow_state`` (differentiate a model's state passed in ``params``, instead of refusing it),
    ``targets`` (the key of the targets in mapping batches)."""

    compiler_options: Mapping[str, Any] | None = None
    mesh: Mesh | None = None
    data_axis: str | None = None
    allow_state: bool = False
    targets: TargetsArg = "labels"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.compiler_options is not None and not isinstance(self.compiler_options, Mapping):
            raise TypeError(f"compiler_options must be a mapping or None, got {type(self.compiler_options).__name__}")
        if self.targets is None:
            raise TypeError("targets=None: the JAX losses need targets; name their key in mapping batches")
        BatchFormat(targets=self.targets)  # checks its type

    @property
    def batch_format(self) -> BatchFormat:
        """How a batch is read (:class:`eigenscope.adapters._batches.BatchFormat`)."""
        return BatchFormat(targets=self.targets)
