"""PyTorch adapters: curvature matrices of a model + loss + data as eigenscope operators.

>>> import eigenscope as es
>>> from eigenscope.adapters import torch as est
>>> H = est.hessian(model, torch.nn.functional.cross_entropy, batches)   # doctest: +SKIP
>>> es.eigsh(H, k=5)                                                       # doctest: +SKIP

Every operator is an :class:`eigenscope.LinearOperator` over the flattened selected
parameters (torch tensors on the model's device and dtype, ``symmetric=True``). Building
or applying one leaves the model exactly as it was: parameters, buffers (BatchNorm
running statistics), ``.grad``, ``requires_grad`` and train/eval mode.

One constructor per curvature matrix of :data:`eigenscope.adapters.KINDS`, with the
matrix's name: :func:`hessian`, :func:`ggn`, :func:`gradient_covariance` (``per="sample"``
or ``per="batch"``); :func:`empirical_fisher` is :func:`gradient_covariance` with
``per="sample"``, and :func:`layerwise` takes the name as ``kind=``.

Models and batches come as users have them: ``(inputs, targets)`` pairs or mappings with
the targets inside (Hugging Face ``labels``; ``targets=``), any calling convention through
``forward=(model, inputs) -> outputs``, outputs reduced to their logits for a named or torch
loss (``output=`` chooses), ``loss_fn=None`` for the model's own loss, ``"causal_lm"`` for a
language model, ``dropout="off"`` (see ``docs/models.md``).

Under ``torch.distributed`` (``torchrun``) each rank passes its shard of the data and every
product is summed over the ranks (``process_group=``; see ``docs/distributed.md``).

The building blocks of the operators are public for code that evaluates the model the way
they do (the loss landscape, a training loop): :class:`Batches` and :func:`batch_size`
(the data), :func:`select_params`, :func:`make_spec` and :class:`ParamSpec` (which
parameters, and the flat vector), :func:`resolve_loss`, :class:`FunctionalModel` and
:func:`call_model` (the model and loss as pure functions of the parameters).
"""

from ._api import empirical_fisher, ggn, gradient_covariance, hessian, layerwise
from ._data import Batches, batch_size
from ._distributed import DistributedError
from ._functional import FunctionalModel, call_model
from ._losses import resolve_loss
from ._operator import CurvatureOperator
from ._params import ParamSpec, make_spec, select_params
from ._state import ModelState, stochastic_modules

__all__ = [
    "Batches",
    "CurvatureOperator",
    "DistributedError",
    "FunctionalModel",
    "ModelState",
    "ParamSpec",
    "batch_size",
    "call_model",
    "empirical_fisher",
    "ggn",
    "gradient_covariance",
    "hessian",
    "layerwise",
    "make_spec",
    "resolve_loss",
    "select_params",
    "stochastic_modules",
]
