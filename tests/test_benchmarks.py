"""Smoke tests of the benchmark harness (``python -m benchmarks``) on tiny workloads.

Benchmarks are not tests: nothing here asserts a time. What is checked: the harness runs end
to end and writes a document the report renders, and every tool's products are counted
exactly (product counts are deterministic).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("threadpoolctl")

import eigenscope as es  # noqa: E402
from benchmarks.compare import _density, _reference, _report, _tasks  # noqa: E402
from benchmarks.compare import _peers as P  # noqa: E402
from benchmarks.compare._timing import BudgetExceeded, Meter, timed  # noqa: E402
from benchmarks.compare._workloads import Setup  # noqa: E402


@pytest.fixture(scope="module")
def w3() -> Setup:
    return Setup.build("W3", "tiny")


def test_meter_counts_eigenscope_products(w3):
    meter = Meter()
    H = P.eigenscope_operator(w3, meter)
    r = es.eigsh(H, 2, which="LA", tol=1e-3, seed=0, return_eigenvectors=False)
    assert meter.products == r.num_matvecs == H.num_matvecs
    H @ torch.zeros(H.shape[0], 3)
    assert meter.products == r.num_matvecs + 3  # a block of 3 counts 3


def test_meter_cap_stops_a_run(w3):
    run = timed(lambda m: P.eigenscope_density(w3, m, num_steps=10, num_probes=1, seed=0), cap=4)
    assert run.outcome == {"capped": True}
    assert run.products == 4
    with pytest.raises(BudgetExceeded):
        meter = Meter(cap=0)
        meter.wrap(lambda: None)()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.func inside curvlinops, called directly here
def test_peer_product_counts(w3):
    pytest.importorskip("pyhessian")
    pytest.importorskip("curvlinops")
    pytest.importorskip("hessian_eigenthings")
    # PyHessian's power iteration with tol=0 never stops early: maxIter products per eigenvalue.
    run = timed(lambda m: P.pyhessian_eigenvalues(w3, m, k=2, tol=0.0, max_iter=3, seed=0))
    assert run.products == 6
    # Its density: one product per Lanczos step and probe, with the torch.eig shim.
    original = getattr(torch, "eig", None)
    run = timed(lambda m: P.pyhessian_density(w3, m, num_steps=5, num_probes=2, seed=0))
    assert run.products == 10
    assert np.asarray(run.outcome["weights"]).shape == (2, 5)
    np.testing.assert_allclose(np.asarray(run.outcome["weights"]).sum(axis=1), 1.0, rtol=1e-5)
    assert getattr(torch, "eig", None) is original  # the shim is gone afterwards
    # hessian-eigenthings' Lanczos: max_iter products.
    run = timed(lambda m: P.eigenthings_lanczos(w3, m, k=1, which="LA", max_iter=7, seed=0))
    assert run.products == 7
    # ARPACK through curvlinops: the products match what the SciPy operator was asked for.
    meter = Meter()
    A = P.curvlinops_scipy(w3, meter)
    A.matvec(np.ones(A.shape[0]))
    A.matmat(np.ones((A.shape[0], 4)))
    assert meter.products == 5
    # eigenscope's density: steps × probes.
    run = timed(lambda m: P.eigenscope_density(w3, m, num_steps=6, num_probes=3, seed=0))
    assert run.products == 18


def test_all_tools_multiply_by_the_same_hessian(w3):
    """Same weights, same batches, the same mean over samples (tiny batches are unequal: 4, 4, 2)."""
    pytest.importorskip("pyhessian")
    pytest.importorskip("hessian_eigenthings")
    top = [
        timed(lambda m: P.eigenscope_eigsh(w3, m, k=1, which="LA", tol=1e-6, seed=0)).outcome["eigenvalues"][0],
        timed(lambda m: P.pyhessian_eigenvalues(w3, m, k=1, tol=1e-7, max_iter=500, seed=0)).outcome["eigenvalues"][0],
        timed(lambda m: P.eigenthings_lanczos(w3, m, k=1, which="LA", max_iter=40, seed=0)).outcome["eigenvalues"][0],
    ]
    np.testing.assert_allclose(top, top[0], rtol=1e-3)


def test_jacobi_from_stem_gives_shorter_runs():
    """The rule of m' < m steps rebuilt from an m-step rule equals an m'-step Lanczos run."""
    rng = np.random.default_rng(0)
    lam = np.sort(rng.standard_normal(300))
    A = np.diag(lam)
    v0 = rng.choice([-1.0, 1.0], size=300)
    long = es.lanczos(A, 40, v0=v0)
    alpha, beta = _tasks.jacobi_from_stem(long.ritz_values, long.weights)
    np.testing.assert_allclose(alpha, long.alpha, atol=1e-8)
    short = es.lanczos(A, 12, v0=v0)
    nodes, weights = _tasks.prefix_rule(alpha, beta, 12)
    np.testing.assert_allclose(nodes, short.ritz_values, atol=1e-8)
    np.testing.assert_allclose(weights, short.weights, atol=1e-8)


def test_harness_runs_and_report_renders(tmp_path):
    from benchmarks.compare import run

    out = tmp_path / "compare.json"
    doc = run(
        workloads=["W3"],
        tasks=["top1", "density"],
        size="tiny",
        rounds=1,
        threads=1,
        output=out,
        plan={"W3": {"extra": {"density_probes": (1,), "density_steps": 10}}},
        cap_factor=3.0,
        min_cap=30,
        tools=("eigenscope", "pyhessian"),
        reference_dir=tmp_path,
        command="pytest",
        log=lambda _: None,
    )
    saved = json.loads(out.read_text())
    with_pyhessian = P.available("pyhessian") is None
    assert saved["workloads"]["W3"]["tasks"].keys() == ({"top1", "density"} if with_pyhessian else {"top1"})
    top1 = doc["workloads"]["W3"]["tasks"]["top1"]
    assert top1["tools"]["eigenscope"]["status"] == "matched"
    assert top1["tools"]["eigenscope"]["target_met_every_round"]
    # Every tool is accounted for: measured, missed, "cannot" or "not measured", never skipped silently.
    assert top1["tools"].keys() == set(P.TOOLS)
    assert top1["tools"]["curvlinops"]["status"] == "not measured"
    if with_pyhessian:
        assert top1["tools"]["pyhessian"]["status"] in ("matched", "missed")
        density = doc["workloads"]["W3"]["tasks"]["density"]
        assert density["equal"]["1"]["eigenscope"]["timing"]["products"]["median"] == 10
        assert density["equal"]["1"]["pyhessian"]["timing"]["products"]["median"] == 10
    else:  # without PyHessian installed the table says so, and its comparisons are listed as not run
        assert top1["tools"]["pyhessian"]["status"] == "cannot"
        assert "PyHessian" in doc["workloads"]["W3"]["not_run"]["density"]
    ref = json.loads((tmp_path / "reference_W3_tiny.json").read_text())
    assert ref["fingerprint"] == _reference.fingerprint(Setup.build("W3", "tiny"))
    page = _report.compare_section(saved)
    assert "### W3" in page and "| top-1 eigenvalue | eigenscope |" in page
    results = tmp_path / "results"
    results.mkdir()
    (results / "compare_cpu.json").write_text(out.read_text())
    assert "## Comparison with PyHessian" in _report.render_page(results)


def test_results_of_separate_runs_merge(tmp_path):
    from benchmarks.compare import _merged, _previous

    setup = {"workload": "W3", "size": "default"}
    first = {
        "benchmark": "compare",
        "command": "python -m benchmarks --only top1",
        "date": "d1",
        "settings": {"size": "default"},
        "workloads": {"W3": {"setup": setup, "tasks": {"top1": {"x": 1}}, "not_run": {"density": "later"}}},
    }
    out = tmp_path / "compare.json"
    out.write_text(json.dumps(first))
    previous = _previous(out, "default")
    assert previous["W3"]["tasks"]["top1"]["measured_by"]["command"] == first["command"]
    assert _previous(out, "large") == {}  # other sizes never mix
    second = first | {"command": "python -m benchmarks --only density", "date": "d2", "workloads": {}}
    entry = {"setup": setup, "tasks": {"density": {"y": 2}}, "not_run": {"top1": "not asked"}}
    doc = _merged(second, previous, {"W3": entry})
    assert doc["workloads"]["W3"]["tasks"].keys() == {"top1", "density"}
    assert doc["workloads"]["W3"]["not_run"] == {}
    # A workload whose setup changed is measured afresh: nothing old is kept.
    changed = {"setup": {**setup, "size": "other"}, "tasks": {"density": {}}, "not_run": {}}
    assert _merged(second, previous, {"W3": changed})["workloads"]["W3"]["tasks"].keys() == {"density"}


def test_verification_benchmark_quick(tmp_path):
    from benchmarks import bench_verification

    out = tmp_path / "verification.json"
    result = bench_verification.main(["--quick", "--output", str(out)])
    assert json.loads(out.read_text())["rows"] == result["rows"]
    for row in result["rows"]:
        if row["converged"]:
            assert row["max_error"] <= 1e-6 * 50  # the spectra reach 50; tol = √ε
            assert row["verification"] <= 1.2 * row["main"]


# ---- the density metric: W1 between spectral measures ------------------------------------------
def _random_measure(rng: np.random.Generator, probes: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """``probes`` rules of ``m`` nodes, some shared across probes (ties) and one heavy atom."""
    nodes = rng.standard_normal((probes, m))
    nodes[:, 0] = 5.0  # an atom every probe has: a deflated outlier
    nodes[1:, 1] = nodes[0, 1]  # an exact tie across probes
    weights = rng.random((probes, m))
    return nodes, weights / weights.sum(axis=1, keepdims=True)


def test_w1_of_identical_measures_is_zero():
    nodes, weights = _random_measure(np.random.default_rng(1), 3, 9)
    assert _reference.w1_distance(nodes, weights, nodes, weights) == 0.0
    # The same measure written as one pooled rule: the probe average, not the layout, counts.
    assert _reference.w1_distance(nodes.ravel(), weights.ravel(), nodes, weights) < 1e-15


def test_w1_of_point_masses_is_their_distance_over_the_width():
    a, b = 0.25, -1.5
    assert _reference.w1_distance([a], [1.0], [b], [1.0], width=4.0) == pytest.approx(abs(a - b) / 4.0, rel=1e-15)
    # Without ``width``: the reference's own spread (here its atoms at b and b + 2 of mass 1/2 each).
    w1 = _reference.w1_distance([a], [1.0], [b, b + 2.0], [0.5, 0.5])
    assert w1 == pytest.approx((abs(a - b) + abs(a - b - 2.0)) / 2 / 2.0, rel=1e-15)


@pytest.mark.parametrize("seed", range(5))
def test_w1_matches_scipy(seed):
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(seed)
    nodes, weights = _random_measure(rng, 3, 17)
    ref_nodes, ref_weights = _random_measure(rng, 2, 40)
    ref_nodes = 2.0 * ref_nodes + 0.5
    width = ref_nodes.max() - ref_nodes.min()
    # SciPy normalises the pooled weights: the same measure as the probe average normalised to 1.
    expected = wasserstein_distance(nodes.ravel(), ref_nodes.ravel(), weights.ravel(), ref_weights.ravel()) / width
    got = _reference.w1_distance(nodes, weights, ref_nodes, ref_weights)
    assert got == pytest.approx(expected, rel=1e-12)
    # Ragged rules (several step counts) and zero-weight padding give the same measure.
    rules = [(nodes[0, :5], weights[0, :5]), (nodes[1], weights[1])]
    padded = _density._padded(rules)
    ragged = _reference.w1_distance([t for t, _ in rules], [w for _, w in rules], ref_nodes, ref_weights)
    assert _reference.w1_distance(*padded, ref_nodes, ref_weights) == pytest.approx(ragged, rel=1e-12)
    pooled_nodes, pooled_weights = np.concatenate([t for t, _ in rules]), np.concatenate([w for _, w in rules])
    expected = wasserstein_distance(pooled_nodes, ref_nodes.ravel(), pooled_weights, ref_weights.ravel())
    assert ragged == pytest.approx(expected / width, rel=1e-12)


def test_w1_ignores_probe_order():
    rng = np.random.default_rng(7)
    nodes, weights = _random_measure(rng, 5, 11)
    ref_nodes, ref_weights = _random_measure(rng, 2, 30)
    order = rng.permutation(5)
    w1 = _reference.w1_distance(nodes, weights, ref_nodes, ref_weights)
    assert w1 > 0
    assert _reference.w1_distance(nodes[order], weights[order], ref_nodes, ref_weights) == pytest.approx(w1, rel=1e-14)
    assert _reference.w1_distance(nodes, weights, ref_nodes[::-1], ref_weights[::-1]) == pytest.approx(w1, rel=1e-14)


def _density_entry(new: bool) -> dict:
    """A density task entry as the harness writes it: ``new`` with W1 and L1, else L1 only (older files)."""
    stat = {"median": 1.0, "min": 0.9, "max": 1.1, "n": 3}
    timing = {
        "seconds": stat,
        "products": {"median": 100, "min": 100, "max": 100, "n": 3},
        "seconds_per_product": stat,
        "outside_share": {"median": 0.01, "min": 0.01, "max": 0.01, "n": 3},
        "peak_rss_mib": stat,
        "runs": [],
    }

    def scores(w1: float, l1: float) -> dict:
        out = {"timing": timing, "l1": {"median": l1, "min": l1, "max": l1, "n": 3}}
        if new:
            out["w1"] = {"median": w1, "min": w1, "max": w1, "n": 3}
        return out

    equal = {"eigenscope": scores(0.0123, 0.51), "pyhessian": scores(0.0125, 0.52) | {"ratio_vs_eigenscope": stat}}
    matched = {"setting": {"num_steps": 60, "num_probes": 1}, "eigenscope": scores(0.0121, 0.53)}
    matched |= {"target_w1": 0.0125, "pyhessian": scores(0.0125, 0.52)} if new else {"target_l1": 0.52}
    entry = {"num_steps": 100, "probes": [1], "sigma": 0.034, "grid": [-3.0, 30.0, 2001], "equal": {"1": equal}}
    return entry | {"matched": matched | {"ratio_vs_eigenscope": stat}} | ({"sigma_rel": 0.01} if new else {})


def test_report_renders_old_and_new_density_entries():
    setup = {
        "model": "mlp",
        "num_params": 10,
        "num_samples": 4,
        "num_batches": 1,
        "batch_size": 4,
        "model_mode": "eval",
        "dtype": "float32",
        "eigenscope_options": {},
    }
    doc = {
        "command": "pytest",
        "date": "today",
        "machine": {"cpu": "cpu", "cpu_count": 2},
        "versions": {"numpy": "2"},
        "settings": {
            "rounds": 3,
            "threads": 2,
            "cap_factor": 10.0,
            "eig_target": 1e-3,
            "smallest_target": 1e-2,
            "trace_target": 1e-2,
            "trace_rtol": 5e-3,
        },
        "workloads": {
            "W8": {"setup": setup, "tasks": {"density": _density_entry(new=False)}},
            "W9": {"setup": setup, "tasks": {"density": _density_entry(new=True)}},
        },
    }
    page = _report.compare_section(doc)
    old, new = page.split("### W9")
    assert "L1 ≤ 0.52" in old and "W1 ÷ width" in old and "W1 was not recorded" in old
    assert "| 100 × 1 | – | 0.51 |" in old  # no W1 in an older file: a dash, the L1 beside it
    assert "1-Wasserstein" in new and "W1 ≤ 0.0125" in new and "| 100 × 1 | 0.0123 | 0.51 |" in new
    assert "| 60 × 1 | 0.0121 | 0.53 |" in new
    assert "density, matched accuracy (L1)" in page and "density, matched accuracy (W1)" in page
