"""Seeded synthetic data sets, returned as lists of ``(inputs, targets)`` batches.

Every generator draws from its own ``torch.Generator`` (never the global random state),
so the same arguments give the same tensors on every run. The last batch is smaller when
``batch_size`` does not divide ``num_samples``.
"""

from __future__ import annotations

from typing import Any

import torch

Batch = tuple[Any, torch.Tensor]


def _generator(seed: int) -> torch.Generator:
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def _split(inputs: Any, targets: torch.Tensor, batch_size: int) -> list[Batch]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batches = []
    for start in range(0, targets.shape[0], batch_size):
        sl = slice(start, start + batch_size)
        if isinstance(inputs, dict):
            part: Any = {k: v[sl] for k, v in inputs.items()}
        elif isinstance(inputs, tuple):
            part = tuple(v[sl] for v in inputs)
        else:
            part = inputs[sl]
        batches.append((part, targets[sl]))
    return batches


def images(
    num_samples: int,
    batch_size: int,
    *,
    image_size: int = 32,
    channels: int = 3,
    num_classes: int = 10,
    noise: float = 1.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> list[Batch]:
    """CIFAR-like images: ``x = template[y] + noise · N(0, I)`` with one smooth random
    template per class, so the classes are learnable but overlap.

    Returns batches of ``(x (b, channels, image_size, image_size), y (b,) int64)``.
    """
    gen = _generator(seed)
    coarse = torch.randn(num_classes, channels, 4, 4, generator=gen)
    templates = torch.nn.functional.interpolate(
        coarse, size=(image_size, image_size), mode="bilinear", align_corners=False
    )
    y = torch.randint(0, num_classes, (num_samples,), generator=gen)
    x = templates[y] + noise * torch.randn(num_samples, channels, image_size, image_size, generator=gen)
    return _split(x.to(dtype), y, batch_size)


def token_classification(
    num_samples: int,
    batch_size: int,
    *,
    vocab_size: int = 1000,
    seq_len: int = 32,
    num_classes: int = 10,
    seed: int = 0,
) -> list[Batch]:
    """Token sequences labelled by a hidden teacher: each token carries a random score
    vector in ``R^num_classes`` and the label is the argmax of the scores summed over the
    sequence.

    Returns batches of ``(tokens (b, seq_len) int64, y (b,) int64)``.
    """
    gen = _generator(seed)
    scores = torch.randn(vocab_size, num_classes, generator=gen)
    tokens = torch.randint(0, vocab_size, (num_samples, seq_len), generator=gen)
    y = scores[tokens].sum(dim=1).argmax(dim=1)
    return _split(tokens, y, batch_size)


def language_modeling(
    num_samples: int,
    batch_size: int,
    *,
    vocab_size: int = 256,
    seq_len: int = 32,
    seed: int = 0,
) -> list[Batch]:
    """Sequences from a random sparse bigram Markov chain (each token has a handful of
    likely successors); targets are the inputs shifted by one token.

    Returns batches of ``(tokens (b, seq_len) int64, next_tokens (b, seq_len) int64)``.
    """
    gen = _generator(seed)
    logits = 3.0 * torch.randn(vocab_size, vocab_size, generator=gen)
    probs = torch.softmax(logits, dim=1)
    seq = torch.empty(num_samples, seq_len + 1, dtype=torch.int64)
    seq[:, 0] = torch.randint(0, vocab_size, (num_samples,), generator=gen)
    for t in range(seq_len):
        seq[:, t + 1] = torch.multinomial(probs[seq[:, t]], 1, generator=gen)[:, 0]
    return _split(seq[:, :-1].contiguous(), seq[:, 1:].contiguous(), batch_size)


def click_through(
    num_samples: int,
    batch_size: int,
    *,
    num_fields: int = 8,
    num_ids: int = 1000,
    num_dense: int = 4,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> list[Batch]:
    """Click-through data for :class:`WideAndDeep`: Zipf-distributed ids per field (a few
    ids are frequent, most are rare, as in Criteo), Gaussian dense features and a click
    drawn from a logistic teacher over both.

    Returns batches of ``({"ids": (b, num_fields) int64, "dense": (b, num_dense)}, clicked (b,))``
    with float targets in ``{0, 1}``.
    """
    gen = _generator(seed)
    zipf = 1.0 / torch.arange(1, num_ids + 1, dtype=torch.float64) ** 1.1
    ids = torch.multinomial(zipf, num_samples * num_fields, replacement=True, generator=gen)
    ids = ids.reshape(num_samples, num_fields)
    dense = torch.randn(num_samples, num_dense, generator=gen)
    id_effect = torch.randn(num_fields, num_ids, generator=gen)
    logit = id_effect.gather(1, ids.T).sum(dim=0) / num_fields**0.5 + dense @ torch.randn(num_dense, generator=gen)
    clicked = torch.bernoulli(torch.sigmoid(logit - 1.0), generator=gen)
    return _split({"ids": ids, "dense": dense.to(dtype)}, clicked.to(dtype), batch_size)


def digits(
    batch_size: int = 256,
    *,
    num_samples: int | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> list[Batch]:
    """scikit-learn's 8×8 handwritten digits (1797 images, 10 classes, shipped with
    scikit-learn, no download), shuffled with ``seed`` and scaled to ``[0, 1]``.

    Returns batches of ``(x (b, 1, 8, 8), y (b,) int64)``. Needs scikit-learn, which
    eigenscope does not depend on; raises ``ImportError`` saying so without it.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError("eigenscope.zoo.digits needs scikit-learn: pip install scikit-learn") from exc
    data = load_digits()
    x = torch.as_tensor(data.images, dtype=torch.float64) / 16.0
    y = torch.as_tensor(data.target, dtype=torch.int64)
    order = torch.randperm(y.shape[0], generator=_generator(seed))
    if num_samples is not None:
        order = order[:num_samples]
    return _split(x[order, None].to(dtype), y[order], batch_size)
