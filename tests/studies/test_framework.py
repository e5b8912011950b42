"""The study framework: verdicts decided from numbers, the report, the output folder, the command."""

from __future__ import annotations

import json
import math

import pytest

from eigenscope.analysis import studies
from eigenscope.analysis.studies import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    Claim,
    Criterion,
    Measured,
    Study,
    StudyContext,
    StudyOutput,
    Table,
)
from tests._helpers import HtmlText


def test_measured_statistics():
    m = Measured("x", [1.0, 2.0, 3.0, float("nan")])
    assert m.count == 3
    assert m.mean == pytest.approx(2.0)
    assert m.std == pytest.approx(1.0)
    assert m.stderr == pytest.approx(1 / math.sqrt(3))
    lo, hi = m.interval
    assert lo == pytest.approx(2 - 2 / math.sqrt(3)) and hi == pytest.approx(2 + 2 / math.sqrt(3))
    single = Measured("y", 0.5)
    assert single.interval == (0.5, 0.5) and single.stderr == 0.0


@pytest.mark.parametrize(
    ("values", "op", "threshold", "verdict"),
    [
        ([0.9, 0.92, 0.91], ">", 0.5, REPRODUCED),
        ([0.1, 0.12, 0.11], ">", 0.5, NOT_REPRODUCED),
        ([0.1, 0.9, 0.5], ">", 0.5, INCONCLUSIVE),
        ([0.1, 0.12, 0.11], "<", 0.5, REPRODUCED),
        ([0.9, 0.92, 0.91], "<", 0.5, NOT_REPRODUCED),
        ([0.5], ">", 0.5, NOT_REPRODUCED),  # the boundary is not on the claimed side
        ([], ">", 0.5, INCONCLUSIVE),
    ],
)
def test_criterion_verdicts(values, op, threshold, verdict):
    assert Criterion(Measured("q", values), op, threshold).verdict == verdict


def test_claim_combines_criteria():
    yes = Criterion(Measured("a", [2.0, 2.1]), ">", 1.0)
    no = Criterion(Measured("b", [0.0, 0.1]), ">", 1.0)
    unsure = Criterion(Measured("c", [0.0, 2.0]), ">", 1.0)
    assert Claim("k", "s", [yes, yes]).verdict == REPRODUCED
    assert Claim("k", "s", [yes, no, unsure]).verdict == NOT_REPRODUCED
    assert Claim("k", "s", [yes, unsure]).verdict == INCONCLUSIVE
    assert "a > 1" in Claim("k", "s", [yes]).rule
    with pytest.raises(ValueError, match="criterion"):
        Claim("k", "s", [])
    with pytest.raises(ValueError, match="op"):
        Criterion(Measured("a", 1.0), ">=", 1.0)  # type: ignore[arg-type]


def _toy_run(ctx: StudyContext) -> StudyOutput:
    from matplotlib.figure import Figure

    values = [0.8 + 0.01 * s for s in range(len(ctx.replicate_seeds(3, 2)))]
    fig = Figure()
    fig.subplots().plot(values)
    ctx.figure("series", fig, "the toy series <b>")
    criterion = Criterion(Measured("toy value", values), ">", 0.5)
    claim = Claim("toy", "Toy values exceed one half & stay there.", [criterion])
    return StudyOutput(
        claims=(claim,),
        data={"values": values, "nan": float("nan")},
        tables=(Table("A table", ["a", "b"], [[1, 2.5]], note="a note"),),
        notes=("synthetic",),
        settings={"replicates": len(values)},
    )


@pytest.fixture
def toy_study(monkeypatch):
    study = Study("toy", "A toy study", "seed 999: nowhere", _toy_run)
    monkeypatch.setattr(studies, "get_study", lambda name: study)
    return study


def test_run_study_writes_results_figures_and_a_self_contained_report(toy_study, tmp_path):
    out = tmp_path / "toy"
    results = studies.run_study("toy", out=str(out), quick=True, seed=3)
    saved = json.loads((out / "results.json").read_text())
    assert saved["verdicts"] == {"toy": REPRODUCED}
    assert saved["data"]["nan"] is None  # NaN is stored as null, the file stays valid JSON
    assert saved["run"]["quick"] is True and saved["run"]["seed"] == 3
    assert len(saved["claims"][0]["criteria"][0]["quantity"]["values"]) == 2  # quick: 2 replicates
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "results.json", "series.png", "series.svg"]
    assert results["report_path"].endswith("report.html")
    page = HtmlText((out / "report.html").read_text())
    text = page.text
    assert "Toy values exceed one half & stay there." in text
    assert REPRODUCED in text and "toy value > 0.5" in text
    assert "the toy series <b>" in text  # escaped, shown as text
    page.assert_self_contained()
    # A second run replaces the first (the folder holds only study output).
    studies.run_study("toy", out=str(out), quick=False, seed=3)
    assert len(json.loads((out / "results.json").read_text())["claims"][0]["criteria"][0]["quantity"]["values"]) == 3


def test_run_study_refuses_a_folder_with_other_files(toy_study, tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(studies.JobError, match="not eigenscope output"):
        studies.run_study("toy", out=str(tmp_path))
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_a_failing_study_leaves_no_output(monkeypatch, tmp_path):
    def broken(ctx):
        raise RuntimeError("boom")

    monkeypatch.setattr(studies, "get_study", lambda name: Study("bad", "t", "s", broken))
    with pytest.raises(RuntimeError, match="boom"):
        studies.run_study("bad", out=str(tmp_path / "bad"))
    assert not (tmp_path / "bad").exists()


def test_unknown_study_and_bad_seed():
    with pytest.raises(studies.JobError, match="unknown study 'nope'; the studies are: hessian-vs-second-moment"):
        studies.get_study("nope")
    with pytest.raises(studies.JobError, match="seed"):
        studies.run_study(studies.NAMES[0], seed=-1)


def test_every_study_is_listed_and_callable_by_name():
    listed = studies.list_studies()
    assert [s.name for s in listed] == list(studies.NAMES)
    assert len(listed) == 6
    for s in listed:
        assert s.title and s.source.startswith("seed ")
        assert callable(getattr(studies, s.name.replace("-", "_")))


def test_threads_limited_during_the_run_and_restored(monkeypatch, tmp_path):
    torch = pytest.importorskip("torch")
    seen = {}

    def run(ctx):
        seen["torch"] = torch.get_num_threads()
        return _toy_run(ctx)

    monkeypatch.setattr(studies, "get_study", lambda name: Study("t", "t", "seed 0", run))
    before = torch.get_num_threads()
    studies.run_study("t", out=str(tmp_path / "t"), threads=1)
    assert seen["torch"] == 1 and torch.get_num_threads() == before
    with pytest.raises(studies.JobError, match="threads"):
        studies.run_study("t", out=str(tmp_path / "u"), threads=0)
    assert not (tmp_path / "u").exists()
