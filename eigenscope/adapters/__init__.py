"""Adapters: model + loss + data -> :class:`eigenscope.LinearOperator`.

The framework-free curvature core lives here (the registry of curvature matrices); the
framework kernels live in :mod:`eigenscope.adapters.torch` and :mod:`eigenscope.adapters.jax`,
each imported explicitly.
"""

from ._kinds import KINDS, CurvatureKind, curvature_kind

__all__ = ["KINDS", "CurvatureKind", "curvature_kind"]
