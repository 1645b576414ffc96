"""A disk that fills mid-run: one sentence and exit code 1, no half-written file, and the run,
moved where there is room, resumes to the end."""
import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from evoprune.cli import main

SETTINGS = ["--epochs", "1", "--pop-size", "6", "--generations", "2", "--select", "1", "--finetune-epochs", "1"]


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 1 MB (smaller than the base model) or 3 MB (the base fits, the run does not)."""
    def mount(size: str):
        where = tmp_path / f"disk-{size}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.decode().strip()}")
        mounted.append(where)
        return where
    mounted = []
    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], check=False)


@pytest.mark.parametrize("size", ["1m", "3m"])
def test_a_full_disk_stops_the_run_in_one_sentence_and_it_resumes_elsewhere(small_disk, tmp_path, size):
    run = small_disk(size) / "run"
    done = subprocess.run([sys.executable, "-m", "evoprune.cli", "filters", "--out", str(run), "--cache-dir",
                           str(tmp_path / "cache"), *SETTINGS], capture_output=True, text=True, timeout=600)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"evoprune: error: {run}") and "No space left on device" in last, done.stderr
    assert last.endswith(f"once fixed, continue with `evoprune resume {run}`") and "Traceback" not in done.stderr
    files = [p for p in run.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.endswith(".tmp")]  # every file complete or absent
    json.loads((run / "config.json").read_text())
    moved = tmp_path / "moved"
    shutil.copytree(run, moved)
    assert main(["resume", str(moved)]) == 0
    assert len(pd.read_csv(moved / "pareto.csv")) >= 1 and (moved / "models" / "pruned_00.pt").is_file()
