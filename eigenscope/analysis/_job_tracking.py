"""Stage 6 of ``eigenscope analyze``: earlier checkpoints, analyzed like the final model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..metrics import density_kl, density_wasserstein
from ._job_curvature import CurvatureStage
from ._job_inputs import Inputs
from ._loading import JobError, one_line
from ._progress import ProgressFactory
from ._tracking import Tracking, track


@dataclass(frozen=True)
class TrackingStage:
    """The checkpoints' analyses, the final model's last.

    Attributes
    ----------
    tracking : Tracking
        One report per checkpoint; the last is the main analysis itself.
    """

    tracking: Tracking

    @property
    def num_matvecs(self) -> int:
        """Products spent on the earlier checkpoints (the last row is counted by the main analysis)."""
        return int(sum(sum(r.num_matvecs.values()) for r in self.tracking.reports[:-1]))

    def metrics_json(self) -> dict[str, float]:
        """``kl_first_to_last`` and ``w1_first_to_last`` for the ``metrics`` section (none for one row)."""
        reports = self.tracking.reports
        if len(reports) < 2:
            return {}
        first, last = reports[0].density, reports[-1].density
        return {"kl_first_to_last": density_kl(last, first), "w1_first_to_last": density_wasserstein(last, first)}

    def to_json(self) -> dict[str, Any]:
        """The ``tracking`` section of ``results.json``."""
        return self.tracking.to_dict()


def track_checkpoints(
    inputs: Inputs,
    curvature: CurvatureStage,
    checkpoints: Sequence[tuple[str, Any]],
    *,
    final_label: str,
    progress: ProgressFactory,
) -> TrackingStage:
    """The earlier ``(label, checkpoint)`` pairs, analyzed with the main run's options, and the final model.

    To keep the run short the earlier checkpoints skip the trace and find one bottom
    eigenvalue; the density (same steps, probes and seed) and the top eigenvalues are
    computed exactly as for the final model, so the rows compare like with like.
    """
    final_state = {k: v.detach().clone() for k, v in inputs.model.state_dict().items()}
    try:
        earlier = track(
            inputs.model,
            inputs.loss_fn,
            inputs.train,
            [c for _, c in checkpoints],
            labels=[name for name, _ in checkpoints],
            matrix=curvature.matrix,
            operator_options={"cache_graphs": "auto"},
            reference=final_state,
            progress=progress,
            k_bottom=1 if curvature.k_bottom else 0,
            trace_matvecs=0,
            **curvature.options._asdict(),
        )
    except (OSError, ValueError) as exc:
        raise JobError(f"--track: {one_line(exc)}") from exc
    final_extras = {"loss": curvature.loss, "normalized_inner_product": float("nan")}
    return TrackingStage(
        Tracking(
            labels=(*earlier.labels, final_label),
            reports=(*earlier.reports, curvature.report),
            extras=(*earlier.extras, final_extras),
        )
    )
