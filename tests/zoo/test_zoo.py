"""The reference models and synthetic data sets."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from eigenscope import zoo

NAMES = ["resnet", "vgg", "transformer", "causal_lm", "wide_deep"]


def _forward(model, inputs):
    with torch.no_grad():
        if isinstance(inputs, dict):
            return model(**inputs)
        return model(inputs)


@pytest.mark.parametrize("name", NAMES)
def test_tiny_workloads(name):
    w = zoo.workload(name, "tiny", dtype=torch.float64)
    assert 50 <= w.num_params <= 500  # a few hundred parameters: dense Hessians stay cheap
    assert [int(y.shape[0]) for _, y in w.batches] == [4, 4, 2]
    assert w.num_samples == 10
    x, y = w.batches[0]
    with torch.no_grad():
        loss = w.loss_fn(_forward(w.model, x), y)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert next(w.model.parameters()).dtype == torch.float64


@pytest.mark.parametrize(
    ("name", "low", "high", "samples", "batch"),
    [
        ("W1", 100_000, 300_000, 512, 256),
        ("W2", 150_000, 190_000, 512, 128),
        ("W3", 130_000, 170_000, 4096, 1024),
    ],
)
def test_default_sizes_match_benchmarks_md(name, low, high, samples, batch):
    w = zoo.workload(name)
    assert low <= w.num_params <= high
    assert w.num_samples == samples and int(w.batches[0][1].shape[0]) == batch
    x, y = w.batches[-1]
    with torch.no_grad():
        loss = w.loss_fn(_forward(w.model, x), y)
    assert torch.isfinite(loss) and 0.1 < float(loss) < 10.0


def test_w1_is_eval_mode_with_calibrated_batchnorm():
    w = zoo.workload("W1", "tiny")
    assert not w.model.training
    bn = w.model.stem_bn
    assert bn.momentum == 0.1 and int(bn.num_batches_tracked) == 3
    assert float(bn.running_var.min()) > 0 and not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))


def test_fixed_seeds_and_global_rng_untouched():
    state = torch.random.get_rng_state()
    a = zoo.workload("transformer", "tiny", seed=3)
    b = zoo.workload("transformer", "tiny", seed=3)
    c = zoo.workload("transformer", "tiny", seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    for (k, p), (_, q) in zip(a.model.named_parameters(), b.model.named_parameters(), strict=True):
        assert torch.equal(p, q), k
    for (x1, y1), (x2, y2) in zip(a.batches, b.batches, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(a.model.embed.weight, c.model.embed.weight)
    assert not torch.equal(a.batches[0][0], c.batches[0][0])


def test_resnet_switches():
    plain = zoo.ResNet(8, (4, 8, 8), residual=False, batchnorm=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert all(isinstance(b.shortcut, torch.nn.Identity) and not b.residual for b in plain.blocks)
    full = zoo.ResNet(8, (4, 8, 8))
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in full.modules())
    assert full(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    assert plain(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError, match="depth"):
        zoo.ResNet(9)
    vgg = zoo.VGG((4, "M", 8), batchnorm=False, num_classes=3)
    assert vgg(torch.randn(2, 3, 8, 8)).shape == (2, 3)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in vgg.modules())
    assert zoo.workload("resnet", "tiny", residual=False, batchnorm=False).num_params < 300


def test_data_generators():
    batches = zoo.click_through(10, 4, num_fields=3, num_ids=5, num_dense=2)
    x = batches[0][0]
    assert set(x) == {"ids", "dense"} and x["ids"].dtype == torch.int64 and int(x["ids"].max()) < 5
    assert set(torch.unique(torch.cat([b[1] for b in batches])).tolist()) <= {0.0, 1.0}
    lm = zoo.language_modeling(6, 4, vocab_size=7, seq_len=5)
    assert torch.equal(lm[0][0][:, 1:], lm[0][1][:, :-1])  # targets are the inputs shifted by one
    tok = zoo.token_classification(6, 6, vocab_size=11, seq_len=5, num_classes=3)
    assert tok[0][0].shape == (6, 5) and int(tok[0][1].max()) < 3
    img = zoo.images(5, 2, image_size=8, channels=1, num_classes=2, dtype=torch.float64)
    assert img[0][0].shape == (2, 1, 8, 8) and img[0][0].dtype == torch.float64 and len(img) == 3


def test_lm_loss_per_sequence():
    w = zoo.workload("causal_lm", "tiny", dtype=torch.float64)
    x, y = w.batches[0]
    with torch.no_grad():
        out = w.model(x)
        per = zoo.lm_loss(out, y, reduction="none")
        assert per.shape == (4,)
        assert torch.allclose(per.mean(), zoo.lm_loss(out, y))
        assert torch.allclose(zoo.lm_loss(out, y, reduction="sum"), zoo.lm_loss(out, y) * y.numel())
    with pytest.raises(ValueError, match="reduction"):
        zoo.lm_loss(out, y, reduction="max")


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown workload"):
        zoo.workload("lstm")
    with pytest.raises(ValueError, match="size"):
        zoo.workload("W1", size="huge")
    with pytest.raises(AttributeError):
        zoo.nope


def test_digits():
    pytest.importorskip("sklearn")
    batches = zoo.digits(256, num_samples=300)
    assert [int(y.shape[0]) for _, y in batches] == [256, 44]
    assert batches[0][0].shape == (256, 1, 8, 8) and float(batches[0][0].max()) <= 1.0


def test_digits_without_sklearn_says_so():
    code = textwrap.dedent(
        """
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] == "sklearn":
                    raise ImportError("hidden")
        sys.meta_path.insert(0, Block())
        from eigenscope import zoo
        try:
            zoo.digits()
        except ImportError as exc:
            print(exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install scikit-learn" in out.stdout


def test_import_zoo_does_not_import_torch():
    code = "import sys, eigenscope.zoo; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_digits_loader_logic(monkeypatch):
    # scikit-learn is optional: a stand-in module checks the loader's own logic everywhere.
    import types

    import numpy as np

    rng = np.random.default_rng(0)
    bunch = types.SimpleNamespace(images=rng.integers(0, 17, (30, 8, 8)).astype(float), target=np.arange(30) % 10)
    datasets = types.ModuleType("sklearn.datasets")
    datasets.load_digits = lambda: bunch
    monkeypatch.setitem(sys.modules, "sklearn", types.ModuleType("sklearn"))
    monkeypatch.setitem(sys.modules, "sklearn.datasets", datasets)
    batches = zoo.digits(8, seed=1, dtype=torch.float64)
    assert [int(y.shape[0]) for _, y in batches] == [8, 8, 8, 6]
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    assert x.shape == (30, 1, 8, 8) and x.dtype == torch.float64 and float(x.max()) <= 1.0
    assert sorted(y.tolist()) == sorted((np.arange(30) % 10).tolist())
