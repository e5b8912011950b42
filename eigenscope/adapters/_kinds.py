"""The curvature matrices eigenscope builds from a model + loss + data, one name each.

Every layer that names a curvature matrix (the torch and JAX adapters, the application,
the command line) looks it up here, so adding a matrix is one entry plus a kernel in each
framework.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, TypeVar

T = TypeVar("T")

KindName = Literal["hessian", "ggn", "gradient_covariance"]
"""The names of :data:`KINDS`, for type annotations (a test keeps the two equal)."""

PER = ("sample", "batch")
"""The values of the ``per=`` option of a per-sample kind: per-sample or per-batch gradients."""


@dataclass(frozen=True)
class CurvatureKind:
    """One curvature matrix of the mean loss ``L(θ) = (1/N) Σᵢ ℓᵢ(θ)``.

    Attributes
    ----------
    name
        The one name of the matrix in code, docs, settings files and results.
    title
        How tables and figures name the matrix (``"Hessian"``).
    summary
        A one-line definition, shown by ``eigenscope analyze --help``.
    per_sample
        Whether the matrix is built from per-sample (or per-batch) gradients and takes the
        ``per=`` (one of :data:`PER`) and ``centered=`` options. Per-sample and per-batch
        gradients give one kind, not two: ``per=`` chooses.

    Each adapter (:mod:`eigenscope.adapters.torch`, :mod:`eigenscope.adapters.jax`) has a
    public constructor named :attr:`name` that builds this matrix.
    """

    name: str
    title: str
    summary: str
    per_sample: bool = False


KINDS: Mapping[str, CurvatureKind] = MappingProxyType(
    {
        kind.name: kind
        for kind in (
            CurvatureKind("hessian", "Hessian", "H = ∇²L(θ), the Hessian of the mean loss"),
            CurvatureKind(
                "ggn", "Gauss-Newton (GGN)", "G = (1/N) Σᵢ Jᵢᵀ ∇²ℓ(fᵢ) Jᵢ, the generalized Gauss-Newton matrix"
            ),
            CurvatureKind(
                "gradient_covariance",
                "gradient second moment M",
                "M = (1/N) Σᵢ ∇ℓᵢ ∇ℓᵢᵀ, the second moment of per-sample gradients (centered=True: covariance)",
                per_sample=True,
            ),
        )
    }
)
"""Every curvature matrix, by name."""


def curvature_kind(name: str, *, what: str = "matrix") -> CurvatureKind:
    """The registered matrix called ``name``; ``ValueError`` listing the names otherwise.

    ``what`` names the argument in the message (``"kind must be one of ..."``).
    """
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise ValueError(f"{what} must be one of {', '.join(KINDS)}, got {name!r}") from None


def one_per_kind(table: Mapping[str, T], what: str) -> Mapping[str, T]:
    """``table`` (kind name -> constructor, kernel builder, ...), checked to hold exactly one
    entry per registered kind: an adapter that misses a kind, or names one that is not
    registered, fails when it is imported instead of when that kind is asked for."""
    missing = [name for name in KINDS if name not in table]
    unknown = [name for name in table if name not in KINDS]
    if missing or unknown:
        raise RuntimeError(
            f"internal: {what} must have one entry per curvature kind of eigenscope.adapters.KINDS; "
            f"missing {missing}, not registered {unknown}"
        )
    return MappingProxyType({name: table[name] for name in KINDS})
