"""The options of the torch constructors: the shared ones and the torch adapter's own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .._batches import BatchFormat, ForwardArg, TargetsArg
from .._options import CurvatureOptions
from ._distributed import ProcessGroupArg
from ._outputs import OutputArg
from ._params import ParamsArg

Mode = Literal["auto", "rev-rev", "fwd-rev"]
BlocksArg = None | Literal["module"] | Mapping[str, ParamsArg] | Sequence[ParamsArg]


@dataclass(frozen=True, kw_only=True)
class TorchOptions(CurvatureOptions):
    """The shared :class:`~eigenscope.adapters.CurvatureOptions` and the torch adapter's own,
    as :func:`~eigenscope.adapters.torch.hessian` documents them: which parameters
    (``params``, ``blocks``), how products differentiate (``mode``, ``cache_graphs``,
    ``max_cache_bytes``), where the data lives (``stream``), how batches and outputs are read
    (``targets``, ``forward``, ``output``), randomness (``dropout``, ``allow_stochastic``)
    and data parallelism (``process_group``).

    What needs the model is resolved later: ``params`` and ``blocks`` against its
    parameters, ``process_group`` against ``torch.distributed``.
    """

    params: ParamsArg = None
    mode: Mode = "auto"
    cache_graphs: bool | Literal["auto"] = "auto"
    max_cache_bytes: int | None = None
    stream: bool = False
    blocks: BlocksArg = None
    allow_stochastic: bool = False
    process_group: ProcessGroupArg = "auto"
    targets: TargetsArg = "labels"
    forward: ForwardArg = None
    output: OutputArg = None
    dropout: Literal["on", "off"] = "on"
    compile: bool | Literal["auto"] = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        BatchFormat(targets=self.targets, forward=self.forward)  # checks both
        if self.dropout not in ("on", "off"):
            raise ValueError(f"dropout must be 'on' (the model as it is) or 'off', got {self.dropout!r}")
        if self.mode not in ("auto", "rev-rev", "fwd-rev"):
            raise ValueError(f"mode must be 'auto', 'rev-rev' or 'fwd-rev', got {self.mode!r}")
        if self.compile not in (True, False, "auto"):
            raise ValueError(f"compile must be True, False or 'auto', got {self.compile!r}")
        if self.cache_graphs not in (True, False, "auto"):
            raise ValueError(f"cache_graphs must be True, False or 'auto', got {self.cache_graphs!r}")
        if self.mode == "fwd-rev" and self.cache_graphs is True:
            raise ValueError("cache_graphs needs mode='rev-rev': forward-over-reverse keeps no reusable graph")

    @property
    def product_mode(self) -> str:
        """``mode`` resolved: ``"auto"`` is ``"rev-rev"``, which measured faster on CPU
        (``benchmarks/bench_torch_adapters.py``)."""
        return "rev-rev" if self.mode == "auto" else self.mode
