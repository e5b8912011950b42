"""Curvature matrices of a PyTorch model by name, through the registry of :mod:`eigenscope.adapters`.

Importing this module does not import torch: :func:`curvature_operator` imports the torch
adapter when it is called.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..adapters import KINDS, curvature_kind

if TYPE_CHECKING:
    from ..adapters.torch import CurvatureOperator

MATRICES: tuple[str, ...] = tuple(KINDS)
"""Names accepted by :func:`curvature_operator` (the registry :data:`eigenscope.adapters.KINDS`):
the Hessian, the generalized Gauss-Newton matrix, and the (uncentered) second moment of
per-sample gradients."""

OLD_MATRIX_NAMES: Mapping[str, str] = MappingProxyType({"gradcov": "gradient_covariance"})
"""Earlier spellings still accepted as input (command line, settings files, Python), and
the registry name each stands for. Results always carry the registry name."""


def matrix_name(name: str) -> str:
    """The registry name of a matrix: ``name`` itself, or what an old spelling stands for.

    The one place where an old name (:data:`OLD_MATRIX_NAMES`, e.g. ``"gradcov"``) becomes
    the registry's (``"gradient_covariance"``); anything else is returned unchanged, for
    the caller to check.
    """
    return OLD_MATRIX_NAMES.get(name, name) if isinstance(name, str) else name


def matrix_title(name: str) -> str:
    """How tables and figures name the matrix (``"Hessian"``, ...); the name itself when unknown."""
    kind = KINDS.get(name)
    return name if kind is None else kind.title


def curvature_operator(
    model: Any, loss_fn: Any, data: Iterable[Any], matrix: str = "hessian", **options: Any
) -> CurvatureOperator:
    """The torch adapter's operator of the matrix called ``matrix``.

    Looks ``matrix`` up in the registry (:func:`eigenscope.adapters.curvature_kind`) and
    calls the constructor of the same name in :mod:`eigenscope.adapters.torch`.

    Parameters
    ----------
    model, loss_fn, data
        As for :func:`eigenscope.adapters.torch.hessian`.
    matrix
        A name of :data:`MATRICES`: ``"hessian"``, ``"ggn"`` or ``"gradient_covariance"``
        (``M = (1/N) Σᵢ ∇ℓᵢ∇ℓᵢᵀ``, seed 004's second moment of stochastic gradients; pass
        ``centered=True`` for the covariance). The old name ``"gradcov"`` is accepted.
    options
        Passed on to the adapter (``params=``, ``cache_graphs=``, ...).

    Returns
    -------
    eigenscope.adapters.torch.CurvatureOperator

    Raises
    ------
    ValueError
        For a name the registry does not know, listing the names it does.
    """
    kind = curvature_kind(matrix_name(matrix))
    from ..adapters import torch as est

    return getattr(est, kind.name)(model, loss_fn, data, **options)
