"""Small reference models and seeded synthetic data (demos, tests, benchmarks).

The models are PyTorch modules; this package imports torch when one of its names is
first used, so ``import eigenscope.zoo`` alone does not. :mod:`eigenscope.zoo.jax` holds the
same workloads in plain JAX (imported explicitly).

>>> from eigenscope import zoo
>>> w = zoo.workload("W2", size="tiny")            # model, loss_fn, batches
>>> w.model, w.loss_fn, len(w.batches)             # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ResNet": "_resnet",
    "BasicBlock": "_resnet",
    "VGG": "_vgg",
    "TransformerClassifier": "_transformer",
    "CausalLM": "_transformer",
    "lm_loss": "_transformer",
    "WideAndDeep": "_widedeep",
    "images": "_data",
    "token_classification": "_data",
    "language_modeling": "_data",
    "click_through": "_data",
    "digits": "_data",
    "Workload": "_workloads",
    "workload": "_workloads",
    "NAMES": "_workloads",
    "ALIASES": "_workloads",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
