"""``eigenscope analyze`` under interruption and odd input: the output directory is replaced
whole or not at all, signals end it with one line, bad sizes and files are refused in one line."""

from __future__ import annotations

import json
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from eigenscope.analysis import JobError, _output  # noqa: E402
from tests.test_cli import USER, _assert_one_line_error, _run, _user  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process ids")
PREVIOUS = {"results.json": '{"figures": {"density": ["density.png"]}}\n', "density.png": "old figure"}


def _previous_run(out: Path) -> None:
    """An earlier run's output in ``out``."""
    out.mkdir()
    for name, text in PREVIOUS.items():
        (out / name).write_text(text)


def _assert_previous_intact(out: Path) -> None:
    assert {p.name: p.read_text() for p in out.iterdir()} == PREVIOUS


def _leftovers(out: Path) -> list[str]:
    """Staging or aside folders next to ``out``."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


# ---- the output directory is replaced whole or not at all ----------------------------------


def test_new_run_replaces_the_whole_previous_set(tmp_path, capsys):
    out = tmp_path / "out"
    _previous_run(out)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    status, _, stderr = _run(_user(out, "--no-plots"), capsys)
    assert status == 0, stderr
    # The old figure went with the old set.
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "results.json"]
    assert json.loads((out / "results.json").read_text())["figures"] == {}
    assert _leftovers(out) == []
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers  # restored


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failure_while_writing_figures_keeps_previous_results(tmp_path, capsys, monkeypatch, error):
    from eigenscope.analysis import _plots

    save = _plots.save_figure
    calls = []

    def failing_save(fig, path, **kwargs):
        calls.append(path)
        if len(calls) == 2:  # after one figure is written to the staging folder
            raise error
        return save(fig, path, **kwargs)

    monkeypatch.setattr(_plots, "save_figure", failing_save)
    out = tmp_path / "out"
    _previous_run(out)
    status, _, stderr = _run(_user(out, "--surface-points", "0", "--landscape-points", "0"), capsys)
    if isinstance(error, KeyboardInterrupt):
        assert (status, stderr) == (130, "eigenscope: interrupted\n")
    else:
        _assert_one_line_error(status, stderr, "RuntimeError: disk full")
    assert calls[0].parent.name.startswith(".out.staging-")  # written next to out, not into it
    _assert_previous_intact(out)
    assert _leftovers(out) == []


def test_failed_swap_puts_the_previous_set_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    _previous_run(out)
    staged = _output.OutputDir(str(out))
    real_replace = os.replace

    def replace(src, dst):
        if Path(src) == staged.staging:
            raise PermissionError(13, "Permission denied")
        real_replace(src, dst)

    monkeypatch.setattr(_output.os, "replace", replace)
    with pytest.raises(JobError, match="cannot replace output directory"):
        staged.commit({"new": True})
    staged.abort()
    _assert_previous_intact(out)
    assert _leftovers(out) == []


@POSIX
def test_next_run_recovers_from_a_kill_between_the_renames(tmp_path):
    # Killed after renaming the old set aside and before renaming the new one in: no 'out'.
    out = tmp_path / "out"
    _previous_run(out)
    dead = _dead_pid()
    os.replace(out, tmp_path / f".out.old-{dead}-1234abcd")
    (tmp_path / f".out.staging-{dead}-5678abcd").mkdir()
    staged = _output.OutputDir(str(out))
    _assert_previous_intact(out)  # the complete old set is back
    assert _leftovers(out) == [staged.staging.name]
    staged.abort()
    # Killed after the swap, before removing the old set: the new set stays, the old goes.
    (tmp_path / f".out.old-{dead}-9999abcd").mkdir()
    _output.recover(out)
    _assert_previous_intact(out)
    assert _leftovers(out) == []


def test_folders_of_a_live_run_are_left_alone(tmp_path):
    out = tmp_path / "out"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".out.staging-{other.pid}-0000abcd"
        live.mkdir()
        _output.recover(out)
        assert live.is_dir()
    finally:
        other.kill()
        other.wait()


def test_directory_with_other_files_or_the_working_directory_is_refused(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    _previous_run(out)
    (out / "notes.txt").write_text("mine")
    status, _, stderr = _run(_user(out), capsys)
    _assert_one_line_error(status, stderr, "holds files that are not eigenscope output ('notes.txt')")
    assert (out / "notes.txt").read_text() == "mine"
    monkeypatch.chdir(out)
    status, _, stderr = _run(_user(Path(".")), capsys)
    _assert_one_line_error(status, stderr, "is the working directory or contains it")
    status, _, stderr = _run(_user(Path("..")), capsys)
    _assert_one_line_error(status, stderr, "is the working directory or contains it")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_missing_parents_are_created_and_removed_again(tmp_path):
    out = tmp_path / "a" / "b" / "out"
    staged = _output.OutputDir(str(out))
    assert staged.staging.parent == out.parent and not out.exists()
    staged.abort()
    assert list(tmp_path.iterdir()) == []


# ---- signals: one line, status 130 (SIGINT) or 143 (SIGTERM), previous results intact -------

# The child resets SIGINT and SIGTERM to their defaults: a shell running the tests in the
# background may have set them to "ignore", and an ignored signal stays ignored.
CHILD = textwrap.dedent(
    """
    import signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from eigenscope.cli import main
    print("ready", flush=True)
    sys.exit(main(sys.argv[1:]))
    """
)

SLOW_LOSS = textwrap.dedent(
    """
    import time
    from torch.nn import functional as F

    def loss(outputs, targets):
        open({ready!r}, "a").close()  # the analysis has started: the staging folder exists
        time.sleep(0.02)
        return F.cross_entropy(outputs, targets)
    """
)


def _child(args):
    # cwd: '-c' puts the working directory on sys.path, so tests._cli_user_model imports
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(proc):
    try:
        stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    return proc.returncode, stdout, stderr


@POSIX
@pytest.mark.parametrize(
    ("sig", "status", "line"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_signal_during_the_run_keeps_previous_results(tmp_path, sig, status, line):
    ready = tmp_path / "ready"
    (tmp_path / "slow.py").write_text(SLOW_LOSS.format(ready=str(ready)))
    out = tmp_path / "out"
    _previous_run(out)
    proc = _child(_user(out, "--loss", f"{tmp_path / 'slow.py'}:loss", "--no-plots"))
    deadline = time.monotonic() + 60
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ready.exists(), _finish(proc)
    assert any(n.startswith(".out.staging-") for n in _leftovers(out))
    proc.send_signal(sig)
    code, _, stderr = _finish(proc)
    assert (code, stderr) == (status, f"eigenscope: {line}\n")
    _assert_previous_intact(out)
    assert _leftovers(out) == []


@POSIX
def test_sigint_during_the_imports(tmp_path):
    # 'ready' comes before main() runs, which then spends a second or more importing torch.
    out = tmp_path / "out"
    proc = _child(_user(out))
    assert proc.stdout.readline() == "ready\n"
    time.sleep(0.3)  # importing torch takes a second or more
    proc.send_signal(signal.SIGINT)
    code, stdout, stderr = _finish(proc)
    assert (code, stderr) == (130, "eigenscope: interrupted\n")
    assert stdout == "" and not out.exists() and _leftovers(out) == []


# ---- sizes and paths -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--k-bottom", "51"], "--k-bottom 51 must be smaller than the number of parameters (51)"),
        (["--k", "60"], "--k 60 must be smaller than the number of parameters (51)"),
        (["--num-classes", "4"], "--num-classes 4 is outside the allowed range [1, 3]"),
        (["--num-classes", "0"], "--num-classes 0 is outside the allowed range [1, 3]"),
    ],
)
def test_sizes_that_do_not_fit_the_model(tmp_path, capsys, flags, fragment):
    out = tmp_path / "out"
    status, _, stderr = _run(_user(out, *flags), capsys)
    _assert_one_line_error(status, stderr, fragment)
    assert status == 1 and not out.exists() and _leftovers(out) == []


def test_num_classes_in_range_and_bottom_recorded(tmp_path, capsys):
    out = tmp_path / "out"
    status, _, stderr = _run(_user(out, "--num-classes", "2", "--k-bottom", "2", "--no-plots"), capsys)
    assert status == 0, stderr
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["num_classes"] == 2 and results["analysis"]["outlier_k"] == 2
    assert results["settings"]["k_bottom"] == 2 == len(results["analysis"]["bottom"]["eigenvalues"])


def test_empty_out_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, stderr = _run(_user(""), capsys)
    _assert_one_line_error(status, stderr, "--out must name a directory, got ''")
    assert status == 1 and list(tmp_path.iterdir()) == []


# ---- files that are not what they should be ------------------------------------------------


def test_binary_config_file(tmp_path, capsys):
    config = tmp_path / "job.toml"
    config.write_bytes(b"\x89PNG\r\n\x1a\n" + random.Random(0).randbytes(200))
    status, _, stderr = _run(["analyze", "--config", str(config)], capsys)
    _assert_one_line_error(status, stderr, f"--config: {str(config)!r} is not a TOML file")
    assert "UnicodeDecodeError" not in stderr and "\\x" not in stderr


def _pickles(tmp_path):
    model = __import__(USER, fromlist=["make_model"]).make_model()
    whole = tmp_path / "whole_model.pt"
    torch.save(model, whole)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"weight": [1.0, 2.0]}))
    noise = tmp_path / "noise.pt"
    noise.write_bytes(random.Random(1).randbytes(300))
    folder = tmp_path / "folder.pt"
    folder.mkdir()
    return [
        (whole, "holds pickled Python objects besides tensors"),
        (plain, "is not a PyTorch checkpoint"),
        (noise, "is not a PyTorch checkpoint"),
        (folder, "is a directory, not a checkpoint file"),
    ]


@pytest.mark.parametrize("flag", ["--checkpoint", "--track"])
def test_unreadable_or_corrupt_checkpoints(tmp_path, capsys, flag):
    out = tmp_path / "out"
    cases = _pickles(tmp_path)
    for path, fragment in cases:
        status, _, stderr = _run(_user(out, flag, str(path)), capsys)
        _assert_one_line_error(status, stderr, f"{flag}", fragment)
        assert "weights_only" not in stderr, stderr  # torch's advice to run code from the file
        if "directory" not in fragment:
            assert "only state dicts of tensors" in stderr
    assert not out.exists()


def test_checkpoint_without_read_permission(tmp_path, capsys, monkeypatch):
    from eigenscope.analysis import _loading

    locked = tmp_path / "locked.pt"
    torch.save({}, locked)
    locked.chmod(0)
    if os.access(locked, os.R_OK):  # root reads it all the same: refuse it as the system would anyone else
        real_open = open

        def refusing_open(file, *args, **kwargs):
            if Path(file) == locked:
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(_loading, "open", refusing_open, raising=False)
    status, _, stderr = _run(_user(tmp_path / "out", "--checkpoint", str(locked)), capsys)
    _assert_one_line_error(status, stderr, f"--checkpoint: cannot read checkpoint {str(locked)!r}: Permission denied")


def test_sigint_while_the_package_itself_is_imported(monkeypatch, capsys):
    # Before eigenscope.cli.main can install its handlers, `import eigenscope` loads NumPy and
    # SciPy: the entry point answers an interrupt there too, in one line with status 130.
    import builtins

    import _eigenscope_command

    real_import = builtins.__import__

    def interrupted(name, *args, **kwargs):
        if name == "eigenscope.cli":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    assert _eigenscope_command.main() == 130
    assert capsys.readouterr().err == "eigenscope: interrupted\n"
