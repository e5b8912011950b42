"""``eigenscope study``: listing, errors, a run through the command, the report in a browser."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from eigenscope.analysis import studies
from eigenscope.cli import main
from tests.studies.test_framework import _toy_run


def _run(args, capsys):
    status = main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def toy(monkeypatch):
    study = studies.Study(studies.NAMES[0], "A toy study", "seed 999: nowhere", _toy_run)
    monkeypatch.setattr(studies, "get_study", lambda name: study)
    return study


def test_list(capsys):
    pytest.importorskip("torch")
    status, out, err = _run(["study", "--list"], capsys)
    assert status == 0, err
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == list(studies.NAMES)
    assert all("(seed 00" in line for line in lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["study"], "needs a study name or --list"),
        (["study", "nope"], "invalid choice"),
        (["study", studies.NAMES[0], "--seed", "x"], "invalid int value"),
    ],
)
def test_usage_errors(args, message, capsys):
    status, out, err = _run(args, capsys)
    assert status == 2 and message in err and out == ""
    assert len(err.strip().splitlines()) == 1


def test_run_through_the_command(toy, tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "toy"
    status, stdout, err = _run(["study", toy.name, "--quick", "--seed", "2", "--out", str(out), "--quiet"], capsys)
    assert status == 0, err
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["command"] == f"eigenscope study {toy.name} --quick --seed 2 --out {out} --quiet"
    assert "reproduced  Toy values exceed one half & stay there." in stdout
    assert f"report: {out / 'report.html'}" in stdout
    # A folder with someone else's files: one line, status 1, the files untouched.
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    status, _, err = _run(["study", toy.name, "--quick", "--out", str(tmp_path / "other"), "--quiet"], capsys)
    assert status == 1 and "not eigenscope output" in err
    assert (tmp_path / "other" / "notes.txt").exists()


def test_report_opens_in_a_headless_browser(toy, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no headless browser installed (Debian: apt install chromium); the HTML is parsed instead")
    out = tmp_path / "toy"
    studies.run_study(toy.name, out=str(out), quick=True)
    shot = tmp_path / "shot.png"
    base = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    url = (out / "report.html").as_uri()
    dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout
    assert "Toy values exceed one half &amp; stay there." in dom and "data:image/png;base64," in dom
    subprocess.run([*base, f"--screenshot={shot}", "--window-size=1000,2000", url], capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_values_are_one_line_with_status_1(toy, tmp_path, capsys):
    pytest.importorskip("torch")
    for args, message in (
        (["--seed", "-1"], "--seed must be a non-negative integer, got -1"),
        (["--threads", "0"], "--threads must be a positive integer, got 0"),
    ):
        status, out, err = _run(["study", toy.name, "--quick", "--out", str(tmp_path / "x"), *args], capsys)
        assert status == 1 and err.strip() == f"eigenscope: error: {message}" and out == ""
    assert not (tmp_path / "x").exists()
