"""Nothing in a run directory is read with pickle: a crafted pickle placed anywhere in one is never
executed by resume, pick or summary, and a search's checkpoint is data read without pickle."""
import pickle
import shutil

import numpy as np
import pytest

from evoprune.cli import main
from test_resume import start, stop_at_checkpoint


class Payload:
    """Unpickling this writes a file: the proof that a pickle was executed."""

    def __init__(self, proof):
        self.proof = str(proof)

    def __reduce__(self):
        return (open, (self.proof, "w"))


def plant(folder, proof, names):
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(pickle.dumps(Payload(proof)))


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A filter search killed after its first generation, and the same run finished."""
    import signal

    root = tmp_path_factory.mktemp("no-pickle")
    run = root / "interrupted"
    proc = start(run, root / "cache")
    stop_at_checkpoint(proc, run, signal.SIGKILL)
    finished = root / "finished"
    shutil.copytree(run, finished)
    assert main(["resume", str(finished)]) == 0
    return run, finished


def test_a_search_checkpoint_is_data_read_without_pickle(interrupted):
    run, _ = interrupted
    files = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "search.npz" in files and not [f for f in files if f.endswith((".pkl", ".pickle"))]
    with np.load(run / "checkpoints" / "search.npz", allow_pickle=False) as z:
        assert "state" in z.files and all(z[k].dtype != object for k in z.files)


def test_an_old_pickled_checkpoint_is_refused_not_run(interrupted, tmp_path, capsys):
    run = tmp_path / "old"
    shutil.copytree(interrupted[0], run)
    (run / "checkpoints" / "search.npz").unlink()
    proof = tmp_path / "executed"
    plant(run, proof, ["checkpoints/search.pkl"])
    assert main(["resume", str(run)]) == 2
    assert "never read (a pickle can run code)" in capsys.readouterr().err
    assert not proof.exists()


def test_pickles_planted_anywhere_are_never_executed(interrupted, tmp_path):
    proof = tmp_path / "executed"
    names = ["checkpoints/search.pkl", "checkpoints/evil.pkl", "pareto.pkl", "models/pruned_00.pkl", "run.pickle"]
    finished = tmp_path / "finished"
    shutil.copytree(interrupted[1], finished)
    plant(finished, proof, names[2:])
    assert main(["summary", str(finished)]) == 0
    assert main(["pick", str(finished), "--by", "max-drop", "--value", "1"]) == 0
    unfinished = tmp_path / "unfinished"
    shutil.copytree(interrupted[0], unfinished)
    plant(unfinished, proof, names)
    assert main(["resume", str(unfinished)]) == 0  # the real checkpoint is read; the planted files are not
    assert not proof.exists()
