"""Data-parallel PyTorch operators: two gloo processes on localhost against one process.

The ranks are started once (two fresh Python processes: a few seconds) and the tests read
what they saw. Rank 0 holds 8 samples and rank 1 holds 3 (uneven shards).
"""

from __future__ import annotations

import numpy as np
import pytest

from ._launch import launch, require_gloo

# Several processes per test: one xdist worker runs them all, so their ranks never compete.
pytestmark = pytest.mark.xdist_group("distributed")

ARRAYS = ["hv", "hV", "gradient", "ggn_V", "cov_V", "sum_blocks_v"]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    require_gloo()
    return launch(tmp_path_factory.mktemp("ranks"))


@pytest.fixture(scope="module")
def agree(ranks):
    """Per rank: ``sharded`` (its results) and ``single`` (one process on all the data; the
    ranks computed halves of it, merged here)."""
    single = {**ranks[0]["agree"]["single"], **ranks[1]["agree"]["single"]}
    return [{"sharded": r["agree"]["sharded"], "single": single} for r in ranks]


@pytest.fixture(scope="module")
def failures(ranks):
    return [r["failures"] for r in ranks]


def _close(actual, expected, rtol):
    actual, expected = np.asarray(actual), np.asarray(expected)
    scale = max(float(np.abs(expected).max()), 1e-300)
    assert float(np.abs(actual - expected).max()) <= rtol * scale


@pytest.mark.parametrize("name", ARRAYS)
def test_products_equal_one_process(agree, name):
    single = agree[0]["single"][name]
    for rank in agree:
        _close(rank["sharded"][name], single, 1e-12)


def test_samples_counted_over_ranks(agree):
    single = agree[0]["single"]
    assert single["N"] == 11 and single["world"] == 1
    for rank in agree:
        assert rank["sharded"]["N"] == 11 and rank["sharded"]["world"] == 2
        assert rank["sharded"]["loss"] == pytest.approx(single["loss"], rel=1e-13)


def test_one_allreduce_per_product(agree):
    assert agree[0]["single"]["allreduces"][0] == 0  # computed by rank 0 with process_group=None
    for rank in agree:
        allreduces, calls = rank["sharded"]["allreduces"]
        assert allreduces == calls > 2  # one per matvec/matmat call, whatever the block size


@pytest.mark.parametrize("name", ["top5", "trace", "density_nodes"])
def test_algorithms_equal_one_process(agree, name):
    single = agree[0]["single"][name]
    for rank in agree:
        _close(rank["sharded"][name], single, 1e-10)


@pytest.mark.parametrize("name", [*ARRAYS, "top5", "trace", "density_nodes", "loss"])
def test_ranks_get_identical_results(agree, name):
    np.testing.assert_array_equal(agree[0]["sharded"][name], agree[1]["sharded"][name])


def test_empty_shard_fails_on_every_rank(failures):
    for case in ("empty", "empty_layerwise"):
        assert failures[1][case][:2] == ("ValueError", "data is empty: it yielded no batch")
        kind, message, ranks = failures[0][case]
        assert kind == "DistributedError" and ranks == (1,)
        assert "rank 1: ValueError: data is empty" in message


def test_parameter_count_mismatch_fails_on_every_rank(failures):
    for rank in failures:
        kind, message, _ = rank["num_params"]
        assert kind == "DistributedError"
        assert "different parameter count n: rank 0: 26, rank 1: 32" in message


def test_different_operators_fail_on_every_rank(failures):
    for rank in failures:
        kind, message, _ = rank["kind"]
        assert kind == "DistributedError" and "different operators" in message


@pytest.mark.parametrize(("case", "error"), [("product", "RuntimeError"), ("nan", "FloatingPointError")])
def test_rank_raising_in_a_product_fails_every_rank(failures, case, error):
    assert failures[1][case][0] == error
    kind, message, ranks = failures[0][case]
    assert kind == "DistributedError" and ranks == (1,)
    assert f"rank 1 raised {error} in this product" in message


def test_different_probes_are_refused(failures):
    for rank in failures:
        kind, message, _ = rank["seed_none"]
        assert kind == "DistributedError" and "multiplied different vectors" in message and "seed=" in message


def test_group_still_usable_after_failures(failures):
    np.testing.assert_array_equal(failures[0]["after"], failures[1]["after"])
    assert np.isfinite(failures[0]["after"]).all() and failures[0]["after"].shape == (failures[0]["n"],)


def test_missing_rank_times_out(failures):
    """A rank that never joins the product: the other fails after the group's timeout (2 s)."""
    kind, message, _ = failures[0]["timeout"]
    assert kind == "DistributedError" and "timeout" in message
    assert 1.5 < failures[0]["timeout_seconds"] < 30


def test_process_group_argument():
    """In one process (no process group initialized): "auto", None and False are local."""
    require_gloo()
    import torch
    from torch import nn

    from eigenscope.adapters import torch as est

    model = nn.Linear(3, 2).double()
    data = [(torch.randn(4, 3, dtype=torch.float64), torch.randint(0, 2, (4,)))]
    for pg in ("auto", None, False):
        h = est.hessian(model, "cross_entropy", data, process_group=pg)
        assert h.process_group is None and h.world_size == 1 and h.rank == 0
        assert h.num_samples == h.num_local_samples == 4
        h @ torch.ones(h.shape[0], dtype=torch.float64)
        assert h.num_allreduces == 0 and h.allreduce_seconds == 0.0
    with pytest.raises(ValueError, match="process_group must be 'auto'"):
        est.hessian(model, "cross_entropy", data, process_group="world")
    with pytest.raises(TypeError, match="process_group must be"):
        est.hessian(model, "cross_entropy", data, process_group=3)
