"""A killed or interrupted run continues with `evoprune resume` to the very results of a run that
was never stopped; same seed, same bytes; files as the umask says."""
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

SETTINGS = ["--epochs", "1", "--pop-size", "8", "--generations", "8", "--select", "2", "--finetune-epochs", "1",
            "--max-drop", "0.2"]
MEASURED = {"pareto.csv": ["latency_fraction"], "finetuned.csv": ["latency_ms_per_batch256"], "history.csv": []}


def start(out: Path, cache: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "evoprune.cli", "filters", "--out", str(out), "--cache-dir",
                             str(cache), *SETTINGS], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def stop_after_first_generation(proc: subprocess.Popen, out: Path, sig: int) -> None:
    checkpoint = out / "checkpoints" / "search.pkl"
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
    stop_after_first_generation(proc, out, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL and not (out / "pareto.csv").exists()

    assert main(["resume", str(out)]) == 0
    for name, measured in MEASURED.items():
        expected = pd.read_csv(reference / "reference" / name).drop(columns=measured)
        pd.testing.assert_frame_equal(pd.read_csv(out / name).drop(columns=measured), expected)
    for name in ("base_model.pt", "models/pruned_00.pt", "models/pruned_01.pt"):
        assert digest(out / name) == digest(reference / "reference" / name), name
    assert not (out / "checkpoints").exists()  # a finished run keeps no checkpoints


def test_ctrl_c_prints_one_line_exits_130_and_the_run_resumes(reference):
    out = reference / "interrupted"
    proc = start(out, reference / "cache")
    stop_after_first_generation(proc, out, signal.SIGINT)
    err = proc.stderr.read().strip().splitlines()
    assert proc.returncode == 130
    assert "Traceback" not in "\n".join(err) and err[-1] == f"evoprune: interrupted; continue it with `evoprune resume {out}`"
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
    stop_after_first_generation(proc, out, signal.SIGKILL)
    assert main(["filters", "--out", str(out), *SETTINGS]) == 2
    assert f"holds an unfinished run; continue it with `evoprune resume {out}`" in capsys.readouterr().err
