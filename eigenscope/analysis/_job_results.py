"""``results.json`` of ``eigenscope analyze``, assembled from the stages' results."""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._job_curvature import Comparison, CurvatureStage
from ._job_figures import Figures
from ._job_landscape import Landscape
from ._job_tracking import TrackingStage
from ._job_training import Training
from ._output import jsonable
from ._settings import AnalyzeSettings


@dataclass(frozen=True)
class Environment:
    """The versions of the software and the device a run used."""

    versions: Mapping[str, str]
    device: Mapping[str, Any]

    @classmethod
    def capture(cls, device: Any) -> Environment:
        """The environment now, for a run on the torch ``device``."""
        import scipy
        import torch

        from .. import __version__

        versions = {
            "eigenscope": __version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "torch": torch.__version__,
            "platform": platform.platform(),
        }
        with contextlib.suppress(ImportError):
            import matplotlib

            versions["matplotlib"] = matplotlib.__version__
        info: dict[str, Any] = {"device": str(device), "threads": torch.get_num_threads()}
        if device.type == "cuda":
            info["name"] = torch.cuda.get_device_name(device)
        else:
            info["name"] = platform.processor() or platform.machine()
            info["cpu_count"] = os.cpu_count()
        return cls(versions, info)

    def to_json(self) -> dict[str, Any]:
        """The ``versions`` and ``device`` sections."""
        return {"versions": dict(self.versions), "device": dict(self.device)}


@dataclass(frozen=True)
class AnalyzeResults:
    """Everything one ``eigenscope analyze`` run found, stage by stage.

    Attributes
    ----------
    command : tuple[str, ...]
        The command line.
    settings : AnalyzeSettings
    environment : Environment
    training : Training or None
        The demo's training (None for a user's model).
    curvature : CurvatureStage
    comparison : Comparison or None
    landscape : Landscape
    tracking : TrackingStage or None
    figures : Figures
    timings : Mapping[str, float]
        Seconds per stage of the job (``setup``, ``training``, ``analysis``, ...).
    total_time : float
        Seconds for the whole run.
    """

    command: tuple[str, ...]
    settings: AnalyzeSettings
    environment: Environment
    training: Training | None
    curvature: CurvatureStage
    comparison: Comparison | None
    landscape: Landscape
    tracking: TrackingStage | None
    figures: Figures
    timings: Mapping[str, float]
    total_time: float

    def num_matvecs(self) -> dict[str, int]:
        """Operator products per stage and in total."""
        counts = {f"analysis.{k}": int(v) for k, v in self.curvature.report.num_matvecs.items()}
        if self.comparison is not None:
            counts["compare"] = self.comparison.num_matvecs
        if self.tracking is not None:
            counts["tracking"] = self.tracking.num_matvecs
        counts["total"] = sum(counts.values())
        return counts

    def to_json(self) -> dict[str, Any]:
        """What ``results.json`` holds (NaN and Inf as None)."""
        out: dict[str, Any] = {
            "command": list(self.command),
            "training": None if self.training is None else self.training.to_json(),
            **self.landscape.fit_json(),
            "settings": self.settings.to_json(
                k_bottom=self.curvature.k_bottom,
                num_classes=self.curvature.options.num_classes,  # the K used (None: the outlier ratio uses --k)
            ),
            **self.environment.to_json(),
            **self.curvature.to_json(),
        }
        if self.tracking is not None:
            out["metrics"].update(self.tracking.metrics_json())
        out["compare"] = None if self.comparison is None else self.comparison.to_json()
        out["landscape"] = self.landscape.to_json()
        out["tracking"] = None if self.tracking is None else self.tracking.to_json()
        out["figures"] = self.figures.to_json()
        out["num_matvecs"] = self.num_matvecs()
        analysis = {f"analysis.{k}": v for k, v in self.curvature.report.timings.items()}
        out["timings"] = {**self.timings, **analysis, "total": self.total_time}
        return jsonable(out)
