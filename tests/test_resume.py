"""A killed or interrupted run continues with `evoprune resume` to the very results of a run that
was never stopped; same seed, same bytes; files as the umask says."""
import dataclasses
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from evoprune.cli import main
from evoprune.errors import EvopruneError
from evoprune.methods import resume
from evoprune.methods.emofp import FilterSearchConfig, run_filter_search

SETTINGS = ["--epochs", "1", "--pop-size", "8", "--generations", "8", "--select", "2", "--finetune-epochs", "1",
            "--max-drop", "0.2"]
MEASURED = {"pareto.csv": ["latency_fraction"], "finetuned.csv": ["latency_ms_per_batch256"], "history.csv": []}


CLUSTER = ["cluster", "--epochs", "1", "--ratios", "0.5", "--finetune-epochs", "1", "--cache-dir", "none"]


def start(out: Path, cache: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "evoprune.cli", "filters", "--out", str(out), "--cache-dir",
                             str(cache), *SETTINGS], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def stop_at_checkpoint(proc: subprocess.Popen, out: Path, sig: int, checkpoint: str = "search.npz") -> None:
    """Send ``sig`` as soon as the run has written ``checkpoint`` (by default: its first generation)."""
    checkpoint = out / "checkpoints" / checkpoint
    deadline = time.monotonic() + 300
    while not checkpoint.is_file():
        assert proc.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(sig)
    proc.wait(timeout=120)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A run that was never stopped (its base model cached for the others)."""
    root = tmp_path_factory.mktemp("resume")
    old = os.umask(0o022)
    try:
        proc = start(root / "reference", root / "cache")
        assert proc.wait(timeout=600) == 0, proc.stderr.read()
    finally:
        os.umask(old)
    return root


def test_a_run_killed_during_its_search_resumes_to_the_same_results(reference):
    out = reference / "killed"
    proc = start(out, reference / "cache")
    stop_at_checkpoint(proc, out, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL and not (out / "pareto.csv").exists()

    assert main(["resume", str(out)]) == 0
    for name, measured in MEASURED.items():
        expected = pd.read_csv(reference / "reference" / name).drop(columns=measured)
        pd.testing.assert_frame_equal(pd.read_csv(out / name).drop(columns=measured), expected)
    for name in ("base_model.pt", "models/pruned_00.pt", "models/pruned_01.pt"):
        assert digest(out / name) == digest(reference / "reference" / name), name
    assert not (out / "checkpoints").exists()  # a finished run keeps no checkpoints


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
                         ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_prints_one_line_and_the_run_resumes(reference, sig, code, word):
    out = reference / word
    proc = start(out, reference / "cache")
    stop_at_checkpoint(proc, out, sig)
    err = proc.stderr.read().strip().splitlines()
    assert proc.returncode == code
    assert "Traceback" not in "\n".join(err) and err[-1] == f"evoprune: {word}; continue it with `evoprune resume {out}`"
    assert main(["resume", str(out)]) == 0
    expected = pd.read_csv(reference / "reference" / "pareto.csv").drop(columns=MEASURED["pareto.csv"])
    pd.testing.assert_frame_equal(pd.read_csv(out / "pareto.csv").drop(columns=MEASURED["pareto.csv"]), expected)


def test_run_files_are_readable_as_the_umask_says(reference):
    files = [p for p in (reference / "reference").rglob("*") if p.is_file()]
    assert files and {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o644)}


def test_resume_refuses_a_finished_run_and_a_directory_without_a_run(reference, tmp_path, capsys):
    assert main(["resume", str(reference / "reference")]) == 2
    assert "is complete: nothing to resume" in capsys.readouterr().err
    assert main(["resume", str(tmp_path)]) == 2
    assert "missing config.json" in capsys.readouterr().err


def test_a_new_run_into_an_unfinished_one_is_told_to_resume(reference, capsys):
    out = reference / "unfinished"
    proc = start(out, reference / "cache")
    stop_at_checkpoint(proc, out, signal.SIGKILL)
    assert main(["filters", "--out", str(out), *SETTINGS]) == 2
    assert f"holds an unfinished run; continue it with `evoprune resume {out}`" in capsys.readouterr().err


def test_another_method_killed_after_its_base_resumes_to_the_same_results(tmp_path):
    assert main([*CLUSTER, "--out", str(tmp_path / "reference")]) == 0
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "evoprune.cli", *CLUSTER, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop_at_checkpoint(proc, out, signal.SIGKILL, checkpoint="base.pt")
    assert main(["resume", str(out)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), pd.read_csv(tmp_path / "reference" / "results.csv"))
    assert digest(out / "models" / "pruned_00.pt") == digest(tmp_path / "reference" / "models" / "pruned_00.pt")


def test_an_api_run_with_its_own_model_and_data_resumes_from_python(trained_lenet5, mini, tmp_path):
    cfg = FilterSearchConfig(pop_size=8, generations=4, select=1, finetune_epochs=1, max_drop=0.2, cache_dir=None)
    reference = run_filter_search(cfg, tmp_path / "reference", model=trained_lenet5, data=mini)

    def interrupt(algorithm):
        if algorithm.n_gen == 2:
            raise KeyboardInterrupt  # as Ctrl-C during the third generation

    out = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        run_filter_search(cfg, out, model=trained_lenet5, data=mini, callback=interrupt)
    with pytest.raises(EvopruneError, match="started with a model of the caller's"):
        resume(out)
    other_val = dataclasses.replace(mini, val=mini.val.subset(len(mini.val) // 2))
    with pytest.raises(EvopruneError, match="the validation data differ from those"):
        resume(out, model=trained_lenet5, data=other_val)  # its cached scores were measured on the whole split
    resumed = resume(out, model=trained_lenet5, data=mini)
    measured = MEASURED["pareto.csv"]
    pd.testing.assert_frame_equal(resumed.pareto.drop(columns=measured), reference.pareto.drop(columns=measured))
    pd.testing.assert_frame_equal(resumed.history, reference.history)
