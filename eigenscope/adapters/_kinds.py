"""The curvature matrices eigenscope builds from a model + loss + data, one name each.

Every layer that names a curvature matrix (the torch and JAX adapters, the application,
the command line) looks it up here, so adding a matrix is one entry plus a kernel in each
framework.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class CurvatureKind:
    """One curvature matrix of the mean loss ``L(θ) = (1/N) Σᵢ ℓᵢ(θ)``.

    Attributes
    ----------
    name
        The one name of the matrix in code, docs, settings files and results.
    summary
        A one-line definition, shown by ``eigenscope analyze --help``.
    per_sample
        Whether the matrix is built from per-sample (or per-batch) gradients and takes the
        ``per=`` and ``centered=`` options.
    """

    name: str
    summary: str
    per_sample: bool = False


KINDS: Mapping[str, CurvatureKind] = MappingProxyType(
    {
        kind.name: kind
        for kind in (
            CurvatureKind("hessian", "H = ∇²L(θ), the Hessian of the mean loss"),
            CurvatureKind("ggn", "G = (1/N) Σᵢ Jᵢᵀ ∇²ℓ(fᵢ) Jᵢ, the generalized Gauss-Newton matrix"),
            CurvatureKind(
                "gradient_covariance",
                "M = (1/N) Σᵢ ∇ℓᵢ ∇ℓᵢᵀ, the second moment of per-sample gradients (centered=True: covariance)",
                per_sample=True,
            ),
        )
    }
)
"""Every curvature matrix, by name."""


def curvature_kind(name: str) -> CurvatureKind:
    """The registered matrix called ``name``; ``ValueError`` listing the names otherwise."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise ValueError(f"matrix must be one of {', '.join(KINDS)}, got {name!r}") from None
