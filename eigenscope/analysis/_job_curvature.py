"""Stages 3 and 4 of ``eigenscope analyze``: the curvature analysis, and a second matrix's top subspace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import EigshResult, eigsh
from ..metrics import PrincipalAngles, principal_angles
from ._job_inputs import DataFacts, Inputs, ModelFacts, facts
from ._loading import JobError, one_line
from ._matrices import curvature_operator
from ._progress import CountingOperator, ProgressFactory
from ._report import CurvatureReport, analyze_curvature

if TYPE_CHECKING:
    from ._settings import AnalyzeSettings


class AnalysisOptions(NamedTuple):
    """The options of :func:`analyze_curvature` the main run used (tracking uses them again)."""

    k: int
    num_steps: int
    num_probes: int
    num_classes: int | None
    seed: int


@dataclass(frozen=True)
class CurvatureStage:
    """The analysis of the main matrix at the final parameters.

    Attributes
    ----------
    matrix : str
        The registry name of the matrix.
    report : CurvatureReport
    options : AnalysisOptions
    k_bottom : int
        The bottom eigenpairs computed (``--k-bottom`` resolved).
    loss : float
        The mean loss over the data.
    gradient : torch.Tensor, shape (n,)
        Its gradient (for the landscape's quadratic model; not written out).
    model, data : ModelFacts, DataFacts
        What ``results.json`` says about the model and the data.
    compilation : dict
        ``compile`` (the operator's ``compile=``), ``compiled``, ``compile_seconds`` and
        ``compile_reason`` (why eager, when it is) of the operator's products.
    """

    matrix: str
    report: CurvatureReport
    options: AnalysisOptions
    k_bottom: int
    loss: float
    gradient: Any
    model: ModelFacts
    data: DataFacts
    compilation: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The ``model``, ``data``, ``matrix``, ``loss``, ``gradient_norm``, ``analysis`` and ``metrics`` sections."""
        return {
            "model": self.model.to_json(),
            "data": self.data.to_json(),
            "matrix": self.matrix,
            "loss": self.loss,
            "gradient_norm": self.report.gradient_norm,
            "analysis": self.report.to_dict(),
            "metrics": self.report.scalars(),
            "compilation": dict(self.compilation),
        }


def analyze(inputs: Inputs, settings: AnalyzeSettings, progress: ProgressFactory) -> CurvatureStage:
    """Build the operator of ``settings.matrix`` and run :func:`analyze_curvature` on it."""
    try:
        op = curvature_operator(inputs.model, inputs.loss_fn, inputs.train, settings.matrix, cache_graphs="auto")
        gradient = op.gradient()
        loss = op.loss()
    except (TypeError, ValueError, FloatingPointError, RuntimeError) as exc:
        raise JobError(f"cannot build the {settings.matrix} operator: {one_line(exc)}") from exc
    n = op.shape[0]
    settings.check_sizes(n, None)  # again, on the operator's own size
    k_bottom = settings.bottom_pairs(n)
    classes = inputs.num_classes if inputs.num_classes and inputs.num_classes < n else None
    options = AnalysisOptions(settings.k, settings.steps, settings.probes, classes, settings.seed)
    report = analyze_curvature(
        op,
        k_bottom=k_bottom,
        trace_matvecs=settings.trace_matvecs,
        gradient=gradient,
        progress=progress,
        label="final",
        **options._asdict(),
    )
    model, data = facts(inputs, op)
    return CurvatureStage(
        settings.matrix, report, options, k_bottom, loss, gradient, model, data, compilation_facts(op)
    )


def compilation_facts(op: Any) -> dict[str, Any]:
    """What the operator says about compiling its products (``None`` where it says nothing)."""
    return {name: getattr(op, name, None) for name in ("compile", "compiled", "compile_seconds", "compile_reason")}


@dataclass(frozen=True)
class Comparison:
    """The top eigenpairs of a second matrix and the principal angles to the main matrix's.

    Attributes
    ----------
    matrix : str
        The registry name of the second matrix.
    top : EigshResult
        Its top-k eigenpairs.
    angles : PrincipalAngles
        Between its top-k eigenspace and the main matrix's.
    """

    matrix: str
    top: EigshResult
    angles: PrincipalAngles

    @property
    def num_matvecs(self) -> int:
        """Products of the second matrix."""
        return int(self.top.num_matvecs)

    def to_json(self) -> dict[str, Any]:
        """The ``compare`` section of ``results.json``."""
        return {
            "matrix": self.matrix,
            "top": {
                "eigenvalues": self.top.eigenvalues,
                "residual_norms": self.top.residual_norms,
                "converged": self.top.converged,
                "num_matvecs": self.top.num_matvecs,
            },
            "principal_angles": {
                "cosines": self.angles.cosines,
                "degrees": self.angles.degrees,
                "overlap": self.angles.overlap,
            },
        }


def compare(
    inputs: Inputs, main: CurvatureStage, matrix: str, *, k: int, seed: int, progress: ProgressFactory
) -> Comparison:
    """Top-k of ``matrix`` and the principal angles to the top-k of the main matrix."""
    other = curvature_operator(inputs.model, inputs.loss_fn, inputs.train, matrix, cache_graphs="auto")
    bar = progress(f"top-{k} eigenvalues of {matrix}", None)
    try:
        top = eigsh(CountingOperator(other, bar), k, which="LA", seed=seed)
    finally:
        bar.close()
    return Comparison(matrix, top, principal_angles(main.report.top.eigenvectors[:, :k], top.eigenvectors))
