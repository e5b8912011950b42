"""Fixtures of the JAX adapter tests; every test module skips without JAX."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def models():
    """``name -> Model``: an MLP, a small CNN, a tiny attention block and a Wide&Deep, float64,
    10 samples in batches of 4, 4, 2 (built once per session)."""
    from ._models import tiny_models

    return tiny_models()
