"""The ``eigenscope`` command, run in-process through ``main([...])``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from eigenscope.cli import main  # noqa: E402
from tests._helpers import HtmlText  # noqa: E402

HERE = Path(__file__).resolve().parent
USER = "tests._cli_user_model"
# Small budgets: a 51-parameter model, a few products per stage.
FAST = [
    "--k", "3", "--k-bottom", "1", "--steps", "8", "--probes", "1", "--trace-matvecs", "9",
    "--landscape-points", "5", "--surface-points", "3", "--threads", "1", "--quiet",
]  # fmt: skip


def _without(args, flag):
    """``args`` minus ``flag`` and its value."""
    i = args.index(flag)
    return args[:i] + args[i + 2 :]


def _run(args, capsys):
    status = main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _user(out, *extra):
    return ["analyze", "--model", f"{USER}:make_model", "--data", f"{USER}:make_data", "--out", str(out), *FAST, *extra]


def test_user_model_run_writes_results_and_figures(tmp_path, capsys):
    out = tmp_path / "out"
    status, stdout, stderr = _run(_user(out, "--heldout", f"{USER}:make_heldout"), capsys)
    assert status == 0, stderr
    results = json.loads((out / "results.json").read_text())
    assert results["model"]["num_params"] == 51
    assert results["data"] == {"num_samples": 40, "num_batches": 3, "heldout_samples": 12}
    assert len(results["analysis"]["top"]["eigenvalues"]) == 3
    assert results["analysis"]["density"]["num_matvecs"] == 8
    assert results["settings"]["num_classes"] == 3
    assert results["compare"] is None and results["tracking"] is None
    for key in ("python", "torch", "numpy", "eigenscope"):
        assert key in results["versions"]
    assert results["num_matvecs"]["total"] > 0 and results["timings"]["total"] > 0
    names = {p.name for p in out.iterdir()}
    for fig in ("density", "stem", "loss_along_eigenvectors", "loss_surface"):
        assert {f"{fig}.png", f"{fig}.svg"} <= names
        assert (out / f"{fig}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # the staging folder next to it is gone
    assert "eigenscope analyze: Hessian" in stdout and "top-3 eigenvalues (LA)" in stdout
    page = HtmlText((out / "report.html").read_text())
    page.assert_self_contained()
    assert len(page.sources) == 4  # one embedded PNG per figure
    assert "eigenscope analyze: Hessian" in page.text and "top-3 eigenvalues (LA)" in page.text
    assert "negative mass" in page.text and "Top eigenvalues of the Hessian" in page.text
    top = results["analysis"]["top"]["eigenvalues"]
    assert f"{top[0]:.4g}" in page.text
    assert stderr == ""  # --quiet: no progress bars


def test_file_factory_custom_loss_checkpoint_and_tracking(tmp_path, capsys):
    ckpt = tmp_path / "model.pt"
    model = __import__(USER, fromlist=["make_model"]).make_model()
    torch.save(model.state_dict(), ckpt)
    with torch.no_grad():
        model[0].weight.mul_(0.5)
    early = tmp_path / "early.pt"
    torch.save(model.state_dict(), early)
    file_spec = f"{HERE / '_cli_user_model.py'}"
    out = tmp_path / "out"
    args = [
        "analyze", "--model", f"{file_spec}:make_model", "--data", f"{file_spec}:make_data",
        "--checkpoint", str(ckpt), "--loss", f"{USER}:custom_loss", "--track", str(early),
        "--matrix", "ggn", "--compare", "hessian", "--out", str(out), *_without(FAST, "--k-bottom"),
    ]  # fmt: skip
    status, _stdout, stderr = _run(args, capsys)
    assert status == 0, stderr
    results = json.loads((out / "results.json").read_text())
    assert results["matrix"] == "ggn"
    assert results["analysis"]["bottom"] is None  # GGN: PSD, no bottom end by default
    assert results["compare"]["matrix"] == "hessian"
    rows = results["tracking"]["rows"]
    assert [r["label"] for r in rows] == ["early.pt", "final"]
    assert rows[0]["kl_to_previous"] is None and rows[1]["kl_to_previous"] >= 0
    assert {"tracking.png", "densities.svg", "principal_angles.png"} <= {p.name for p in out.iterdir()}


RESULT_KEYS = [
    "command", "training", "train_accuracy", "heldout", "settings", "versions", "device", "model", "data",
    "matrix", "loss", "gradient_norm", "analysis", "metrics", "compilation", "compare", "landscape", "tracking",
    "figures", "num_matvecs", "timings",
]  # fmt: skip


def test_matrix_names_come_from_the_registry_and_gradcov_is_the_old_name(tmp_path, capsys):
    from eigenscope.adapters import KINDS

    status, stdout, _ = _run(["analyze", "--help"], capsys)
    assert status == 0 and "gradcov is the old name of gradient_covariance" in " ".join(stdout.split())
    assert ", ".join(KINDS) in " ".join(stdout.split())
    light = [*_without(FAST, "--k-bottom"), "--no-plots", "--landscape-points", "0", "--surface-points", "0"]
    model = ["analyze", "--model", f"{USER}:make_model", "--data", f"{USER}:make_data", *light]
    out = tmp_path / "flag"
    status, stdout, stderr = _run([*model, "--out", str(out), "--matrix", "gradcov", "--compare", "hessian"], capsys)
    assert status == 0, stderr
    results = json.loads((out / "results.json").read_text())
    assert list(results) == RESULT_KEYS
    assert results["matrix"] == results["settings"]["matrix"] == "gradient_covariance"
    assert results["compare"]["matrix"] == "hessian" and results["analysis"]["bottom"] is None  # PSD: no bottom
    assert "gradient second moment" in stdout
    # Short runs on a cold compile cache stay eager, and say why.
    comp = results["compilation"]
    assert comp["compile"] == "auto" and comp["compiled"] is False and comp["compile_seconds"] == 0.0
    assert comp["compile_reason"] and "products (compile='auto')" in stdout
    config = tmp_path / "job.toml"
    config.write_text(f'matrix = "ggn"\ncompare = "gradcov"\nout = "{tmp_path / "config"}"\n')
    status, _, stderr = _run([*model, "--config", str(config)], capsys)
    assert status == 0, stderr
    results = json.loads((tmp_path / "config" / "results.json").read_text())
    assert (results["matrix"], results["compare"]["matrix"]) == ("ggn", "gradient_covariance")
    assert results["settings"]["compare"] == "gradient_covariance"


def test_config_file_and_flags_override_it(tmp_path, capsys):
    out = tmp_path / "out"
    config = tmp_path / "job.toml"
    config.write_text(
        "[analyze]\n"
        f'model = "{USER}:make_model"\n'
        f'data = "{USER}:make_data"\n'
        "k = 2\nsteps = 6\nprobes = 1\ntrace-matvecs = 0\nk_bottom = 0\n"
        "landscape-points = 0\nsurface-points = 0\nquiet = true\nthreads = 1\nseed = 3\n"
        f'out = "{out}"\n'
    )
    status, _stdout, stderr = _run(["analyze", "--config", str(config), "--k", "4"], capsys)
    assert status == 0, stderr
    s = json.loads((out / "results.json").read_text())["settings"]
    assert (s["k"], s["steps"], s["seed"], s["trace_matvecs"], s["k_bottom"]) == (4, 6, 3, 0, 0)


def _numbers(results):
    """Everything computed, without the timings."""
    out = {k: results[k] for k in ("metrics", "tracking", "training", "loss")}
    out["analysis"] = {k: v for k, v in results["analysis"].items() if k != "timings"}
    return out


def test_demo_path_with_small_budgets_is_deterministic(tmp_path, capsys):
    # The built-in job's code path (training, tracking, comparison, figures) with tiny budgets;
    # the full default run is test_default_analyze_runs_in_budget.
    pytest.importorskip("sklearn")
    args = ["analyze", "--epochs", "1", "--track-epochs", "0", "--num-classes", "3", *_without(FAST, "--k-bottom")]
    args += ["--k-bottom", "0"]  # the bottom of the spectrum converges slowest; the user-model tests cover it
    status, stdout, stderr = _run([*args, "--out", str(tmp_path / "a")], capsys)
    assert status == 0, stderr
    lighter = ["--no-plots", "--compare", "none", "--landscape-points", "0", "--surface-points", "0"]
    status, _, stderr = _run([*args, *lighter, "--out", str(tmp_path / "b")], capsys)
    assert status == 0, stderr
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "results.json").read_text())
    assert a["model"]["num_params"] == 3658 and a["analysis"]["outlier_k"] == 3
    assert a["compare"]["matrix"] == "gradient_covariance"
    assert [r["label"] for r in a["tracking"]["rows"]] == ["epoch 0", "epoch 1"]
    assert len(a["figures"]) == 7 and b["figures"] == {}
    na, nb = _numbers(a), _numbers(b)
    for key in ("metrics", "training", "loss", "analysis", "tracking"):
        assert na[key] == nb[key], key  # same seed, same numbers
    assert "outlier ratio λ1/λ3" in stdout


def _assert_one_line_error(status, stderr, *fragments):
    assert status != 0
    lines = stderr.strip("\n").split("\n")
    assert len(lines) == 1, stderr
    assert lines[0].startswith("eigenscope: error: ")
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    ("flags", "fragments"),
    [
        (["--model", "no_such_module_xyz:make"], ["cannot import module 'no_such_module_xyz'"]),
        (["--model", f"{USER}:no_such_factory"], ["has no attribute 'no_such_factory'"]),
        (["--model", f"{USER}:NOT_CALLABLE"], ["not a callable factory"]),
        (["--model", f"{USER}:not_a_model"], ["not a torch.nn.Module"]),
        (["--model", f"{USER}:failing_factory"], ["RuntimeError: the factory broke"]),
        (["--model", "missing_file.py:make"], ["does not exist"]),
        (["--model", "no-colon"], ["must look like module:name"]),
        (["--data", f"{USER}:empty_data"], ["yielded no batches"]),
        (["--data", f"{USER}:not_batches"], ["not an (inputs, targets) pair"]),
        (["--loss", "hinge"], ["--loss must be"]),
        (["--checkpoint", "no_such_checkpoint.pt"], ["does not exist"]),
    ],
)
def test_bad_input_is_one_line_and_leaves_nothing(tmp_path, capsys, flags, fragments):
    out = tmp_path / "out"
    args = ["analyze", "--model", f"{USER}:make_model", "--data", f"{USER}:make_data", "--out", str(out), *FAST]
    # later flags win in argparse, so these replace the good ones
    status, _stdout, stderr = _run([*args, *flags], capsys)
    _assert_one_line_error(status, stderr, *fragments)
    assert not out.exists()


def test_checkpoint_that_does_not_match_the_model(tmp_path, capsys):
    other = __import__(USER, fromlist=["make_other_model"]).make_other_model()
    ckpt = tmp_path / "other.pt"
    torch.save(other.state_dict(), ckpt)
    out = tmp_path / "out"
    status, _, stderr = _run(_user(out, "--checkpoint", str(ckpt)), capsys)
    _assert_one_line_error(status, stderr, "does not match the model", "shape mismatch")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    status, _, stderr = _run(_user(out, "--checkpoint", str(garbage)), capsys)
    _assert_one_line_error(status, stderr, "cannot read checkpoint")
    assert not out.exists()


def test_unwritable_output_directory(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    status, _, stderr = _run(_user(blocker / "out"), capsys)
    _assert_one_line_error(status, stderr, "cannot write to output directory")


def test_existing_results_survive_a_failed_run(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("{}")
    status, _, _stderr = _run(_user(out, "--data", f"{USER}:empty_data"), capsys)
    assert status != 0
    assert (out / "results.json").read_text() == "{}"
    assert [p.name for p in out.iterdir()] == ["results.json"]


@pytest.mark.parametrize(
    ("args", "fragment", "code"),
    [
        (["analyze", "--matrix", "fisher"], "invalid choice", 2),
        (["analyze", "--k", "many"], "invalid int value", 2),
        (["frobnicate"], "invalid choice", 2),
        (["analyze", "--data", f"{USER}:make_data"], "need --model", 1),
        (["analyze", "--model", f"{USER}:make_model"], "--model needs --data", 1),
        (["analyze", "--k", "0"], "--k must be an integer >= 1", 1),
    ],
)
def test_usage_errors(tmp_path, capsys, args, fragment, code):
    status, _, stderr = _run([*args, "--out", str(tmp_path / "o")] if args[0] == "analyze" else args, capsys)
    _assert_one_line_error(status, stderr, fragment)
    assert status == code


def test_config_errors(tmp_path, capsys):
    bad_key = tmp_path / "bad.toml"
    bad_key.write_text("kk = 3\n")
    status, _, stderr = _run(["analyze", "--config", str(bad_key)], capsys)
    _assert_one_line_error(status, stderr, "unknown key 'kk'")
    bad_type = tmp_path / "type.toml"
    bad_type.write_text('k = "three"\n')
    status, _, stderr = _run(["analyze", "--config", str(bad_type)], capsys)
    _assert_one_line_error(status, stderr, "'k' must be int")
    broken = tmp_path / "broken.toml"
    broken.write_text("k = [\n")
    status, _, stderr = _run(["analyze", "--config", str(broken)], capsys)
    _assert_one_line_error(status, stderr, "not valid TOML")
    status, _, stderr = _run(["analyze", "--config", str(tmp_path / "missing.toml")], capsys)
    _assert_one_line_error(status, stderr, "does not exist")


def test_version_help_and_python_dash_m(capsys):
    status, stdout, _ = _run(["--version"], capsys)
    assert status == 0 and stdout.startswith("eigenscope ")
    status, stdout, _ = _run([], capsys)
    assert status == 0 and "analyze" in stdout
    status, stdout, _ = _run(["analyze", "--help"], capsys)
    assert status == 0 and "--checkpoint" in stdout
    proc = subprocess.run(
        [sys.executable, "-m", "eigenscope", "--version"], capture_output=True, text=True, cwd=HERE.parent
    )
    assert proc.returncode == 0 and proc.stdout.startswith("eigenscope ")


def test_progress_bars_go_to_stderr(tmp_path, capsys):
    pytest.importorskip("tqdm")
    args = [a for a in _user(tmp_path / "out") if a != "--quiet"]
    status, _stdout, stderr = _run(args, capsys)
    assert status == 0
    assert "top-3 eigenvalues" in stderr and "eigenscope analyze" not in stderr


@pytest.mark.slow
def test_default_analyze_runs_in_budget(tmp_path, capsys, monkeypatch):
    """``eigenscope analyze`` with no options (30-60 s on two cores)."""
    pytest.importorskip("sklearn")
    monkeypatch.chdir(tmp_path)
    status, _stdout, stderr = _run(["analyze", "--quiet"], capsys)
    assert status == 0, stderr
    results = json.loads((tmp_path / "eigenscope-out" / "results.json").read_text())
    # Wall time depends on what else the machine runs; the product count is the budget
    # (1,214 products: about 35 s on the reference two-core machine).
    assert results["num_matvecs"]["total"] < 1500
    top = results["analysis"]["top"]
    assert all(top["converged"]) and len(top["eigenvalues"]) == 10
    assert results["analysis"]["bottom"]["eigenvalues"][0] < 0 < top["eigenvalues"][-1]
    assert results["heldout"]["accuracy"] > 0.9
    assert len(results["figures"]) == 7


HF_FACTORY = """
import torch
import transformers


def model():
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=32, n_positions=16, n_embd=16, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0
    )
    return transformers.GPT2LMHeadModel(config).eval()  # eval: no dropout


def data():
    gen = torch.Generator().manual_seed(1)
    batches = []
    for n in (4, 3):
        ids = torch.randint(0, 32, (n, 8), generator=gen)
        mask = torch.ones_like(ids)
        mask[0, 6:] = 0  # padding
        batches.append({"input_ids": ids, "attention_mask": mask, "labels": ids})
    return batches
"""


def test_hugging_face_model_from_a_file_factory(tmp_path, capsys):
    """A GPT-2 built from a config, batches as a Trainer has them, the "causal_lm" loss: the
    whole job runs (curvature, density, trace, landscape)."""
    pytest.importorskip("transformers")
    factory = tmp_path / "hf_factory.py"
    factory.write_text(HF_FACTORY)
    out = tmp_path / "out"
    args = [
        "analyze", "--model", f"{factory}:model", "--data", f"{factory}:data", "--loss", "causal_lm",
        "--out", str(out), *FAST, "--no-plots",
    ]  # fmt: skip
    status, stdout, stderr = _run(args, capsys)
    assert status == 0, stderr
    results = json.loads((out / "results.json").read_text())
    assert results["model"]["class"] == "GPT2LMHeadModel"
    # The samples of "causal_lm" are the predicted tokens: 7 per sequence, less 2 of padding per batch.
    assert results["data"]["num_samples"] == (4 * 7 - 2) + (3 * 7 - 2) and results["data"]["num_batches"] == 2
    assert results["settings"]["num_classes"] is None  # a vocabulary is no class count
    assert len(results["analysis"]["top"]["eigenvalues"]) == 3
    assert "GPT2LMHeadModel" in stdout
