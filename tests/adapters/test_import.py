"""Importing eigenscope and its adapters package leaves torch unloaded until asked for."""

from __future__ import annotations

import subprocess
import sys


def test_adapters_package_does_not_import_torch():
    code = "import sys, eigenscope, eigenscope.adapters; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_torch_adapter_exports():
    from eigenscope.adapters import torch as est

    for name in ("hessian", "ggn", "gradient_covariance", "empirical_fisher", "layerwise", "CurvatureOperator"):
        assert name in est.__all__ and callable(getattr(est, name))
