"""The options every curvature constructor shares, validated once, and their documentation.

Each adapter extends :class:`CurvatureOptions` with its own options (``mode=`` and
``process_group=`` in torch, ``mesh=`` in JAX) and resolves what depends on its framework
(``vectorize="auto"``: which device the parameters are on); the checks and the words for
the shared ones are written here, once.
"""

from __future__ import annotations

import dataclasses
import inspect
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from ._kinds import PER

_O = TypeVar("_O", bound="CurvatureOptions")


@dataclass(frozen=True, kw_only=True)
class CurvatureOptions:
    """How a curvature operator is built: the options of every constructor of every adapter.

    The constructors take these as keyword arguments (with these defaults) and build one
    options object, which the operator keeps as :attr:`CurvatureOperatorBase.options`.

    Attributes
    ----------
    reduction
        ``"mean"``: the matrix of the mean loss over the ``N`` samples; ``"sum"``: ``N``
        times it (the matrix of the summed loss).
    vectorize
        ``True``: the vectors of a block go through one ``vmap``-ed pass; ``False``: one at
        a time; ``"auto"``: whichever the adapter measured faster on the parameters' device
        (see :meth:`resolve_vectorize`).
    centered
        For a per-sample kind (:attr:`CurvatureKind.per_sample`): subtract ``ḡḡᵀ``, ``ḡ`` the
        full-data gradient.
    per
        For a per-sample kind: ``"sample"`` or ``"batch"`` (one of :data:`PER`); ``None``
        for the other kinds.

    Raises
    ------
    ValueError
        An option outside its values, naming it.
    """

    reduction: Literal["mean", "sum"] = "mean"
    vectorize: bool | Literal["auto"] = "auto"
    centered: bool = False
    per: Literal["sample", "batch"] | None = None

    def __post_init__(self) -> None:
        if self.reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {self.reduction!r}")
        if not (isinstance(self.vectorize, bool) or self.vectorize == "auto"):
            raise ValueError(f"vectorize must be True, False or 'auto', got {self.vectorize!r}")
        if self.per is not None and self.per not in PER:
            raise ValueError(f"per must be 'sample' or 'batch', got {self.per!r}")

    @classmethod
    def from_arguments(cls: type[_O], arguments: Mapping[str, Any]) -> _O:
        """The options among a constructor's ``arguments`` (its ``locals()``): every field of
        ``cls`` found there; the others keep their defaults."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{name: arguments[name] for name in names if name in arguments})

    def resolve_vectorize(self, auto: bool) -> bool:
        """``vectorize`` as a bool: ``auto`` (the adapter's measured choice for the
        parameters' device) when it is ``"auto"``."""
        return auto if self.vectorize == "auto" else bool(self.vectorize)


SHARED_PARAMETERS: Mapping[str, str] = {
    "reduction": """
        ``"mean"`` (the matrix of the mean loss over the N samples) or ``"sum"`` (N times it).
        """,
    "centered": """
        Subtract ``ḡḡᵀ``, ``ḡ = ∇L(θ)`` the full-data gradient (:meth:`CurvatureOperator.gradient`):
        the covariance of the gradients instead of their second moment.
        """,
    "per": """
        ``"sample"`` (per-sample gradients ``gᵢ``) or ``"batch"`` (minibatch gradients ``g_b``,
        weighted by the batch sizes): one matrix, ``gradient_covariance``, either way.
        """,
}
"""The words for the parameters that every adapter's constructors share."""


def document(
    fn: Callable[..., Any],
    parameters: Mapping[str, str],
    *,
    returns: str,
    raises: str = "",
) -> None:
    """Append NumPy-style ``Parameters``, ``Returns`` and ``Raises`` sections to ``fn``'s
    docstring.

    Every parameter of ``fn``'s signature is listed, in signature order, with its text from
    ``parameters`` (the adapter's words) or else :data:`SHARED_PARAMETERS`; a parameter with
    neither is a ``RuntimeError`` at import, so no constructor goes undocumented.
    """
    names = list(inspect.signature(fn).parameters)
    missing = [name for name in names if name not in parameters and name not in SHARED_PARAMETERS]
    if missing:
        raise RuntimeError(f"internal: no documentation for parameters {missing} of {fn.__name__}")
    lines = ["Parameters", "----------"]
    for name in names:
        lines.append(name)
        lines.extend("    " + line for line in _paragraph(parameters.get(name, SHARED_PARAMETERS.get(name, ""))))
    lines += ["", "Returns", "-------", *_paragraph(returns)]
    if raises:
        lines += ["", "Raises", "------", *_paragraph(raises)]
    body = "\n".join(("    " + line) if line else "" for line in lines)
    fn.__doc__ = (fn.__doc__ or "").rstrip() + "\n\n" + body + "\n"


def _paragraph(text: str) -> list[str]:
    return textwrap.dedent(text).strip("\n").splitlines()
