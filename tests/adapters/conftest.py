"""Tiny float64 zoo workloads shared by the adapter tests (built once per session)."""

from __future__ import annotations

import pytest
import torch

from eigenscope import zoo

TINY = ["resnet", "vgg", "transformer", "causal_lm", "wide_deep"]


@pytest.fixture(scope="package", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads and lose much when the cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny():
    """``name -> Workload`` at size tiny, float64 (10 samples in batches of 4, 4, 2)."""
    return {name: zoo.workload(name, "tiny", dtype=torch.float64) for name in TINY}


def random_block(n, b, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, b, generator=gen, dtype=torch.float64)


def assert_close(actual, expected, rtol=1e-10):
    scale = max(float(expected.abs().max()), 1e-300)
    err = float((actual - expected).abs().max())
    assert err <= rtol * scale, f"max error {err:.3g} > {rtol:.0e} * {scale:.3g}"
