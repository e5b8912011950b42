"""Adapters: model + loss + data -> :class:`eigenscope.LinearOperator`.

The framework-free curvature core lives here: the registry of curvature matrices
(:data:`KINDS`, one name per matrix), the operator base every adapter's
``CurvatureOperator`` subclasses (:class:`CurvatureOperatorBase`) and the options every
constructor shares (:class:`CurvatureOptions`). The framework kernels live in
:mod:`eigenscope.adapters.torch` and :mod:`eigenscope.adapters.jax`, each imported
explicitly; each has one public constructor per name of :data:`KINDS`, with that name.

Batches as users have them are read by one convention for every adapter and for the
application: :class:`BatchFormat` and :func:`split_batch` (``(inputs, targets)`` pairs,
mappings with the targets inside, a ``forward=`` hook).
"""

from ._batches import BatchFormat, SplitBatch, split_batch
from ._kinds import KINDS, PER, CurvatureKind, KindName, curvature_kind
from ._operator import CurvatureOperatorBase
from ._options import CurvatureOptions

__all__ = [
    "KINDS",
    "PER",
    "BatchFormat",
    "CurvatureKind",
    "CurvatureOperatorBase",
    "CurvatureOptions",
    "KindName",
    "SplitBatch",
    "curvature_kind",
    "split_batch",
]
