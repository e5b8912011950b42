"""The framework-free batch convention (``eigenscope.adapters.split_batch``), on NumPy arrays."""

from __future__ import annotations

import numpy as np
import pytest

from eigenscope.adapters import BatchFormat, SplitBatch, split_batch


def _split(batch, fmt=None, **kw):
    return split_batch(batch, 3, fmt or BatchFormat(), is_array=lambda x: isinstance(x, np.ndarray), **kw)


X, Y = np.zeros((5, 2)), np.arange(5)


def test_pairs_and_sizes():
    assert _split((X, Y)) == SplitBatch(X, Y, 5)
    inputs, _, size = _split([{"a": X}, (Y[:4], Y)])  # the first array of the targets
    assert size == 4 and inputs == {"a": X}
    assert _split((X, Y), count=lambda x, y: 11).size == 11


def test_mappings_with_targets_inside():
    batch = {"input_ids": X, "labels": Y}
    inputs, targets, size = _split(batch)
    assert inputs.keys() == {"input_ids"} and targets is Y and size == 5
    assert _split((batch, None)).inputs.keys() == {"input_ids"}  # (mapping, None) reads the same
    kept = _split(batch, BatchFormat(keep_targets=True))
    assert kept.inputs.keys() == {"input_ids", "labels"}
    chosen = _split({"x": X, "y": Y[:2]}, BatchFormat(targets="y"))
    assert chosen.inputs.keys() == {"x"} and chosen.size == 2
    whole = _split(batch, BatchFormat(targets=lambda b: b["labels"][:3]))
    assert whole.inputs is batch and whole.size == 3
    # No targets where the loss does not need them: sized by the inputs.
    bare = _split({"input_ids": X[:2]}, need_targets=False)
    assert bare.targets is None and bare.size == 2


def test_messages():
    with pytest.raises(TypeError, match=r"batch 3 is a tuple of length 3; every batch must be an \(inputs, targets\)"):
        _split((X, Y, Y))
    with pytest.raises(TypeError, match=r"batch 3 is a mapping with no key 'labels' \(keys \['x'\]\).*targets="):
        _split({"x": X})
    with pytest.raises(TypeError, match=r"targets None and its inputs are a ndarray"):
        _split((X, None))
    with pytest.raises(ValueError, match=r"batch 3: no array with a leading batch dimension"):
        _split(([1, 2], [3]))
    with pytest.raises(ValueError, match=r"batch 3 is empty"):
        _split((X[:0], Y[:0]))
    with pytest.raises(TypeError, match=r"targets= must be"):
        BatchFormat(targets=3)
    with pytest.raises(TypeError, match=r"forward= must be"):
        BatchFormat(forward="model")
