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
from benchmarks.compare import _peers as P  # noqa: E402
from benchmarks.compare import _reference, _report, _tasks  # noqa: E402
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
