"""Checkpoints inside a run directory, so that a killed or interrupted run continues where it
stopped (``evoprune resume``). They live in ``RUN/checkpoints/`` until the run finishes; a run
directory holding that folder is an unfinished run.

What is saved: the trained base weights, and after every generation of a search the pymoo
algorithm (population, random generator, termination state), the evaluation caches, the history
rows and the global random states. The model and data are never pickled: a resumed run rebuilds
them from its recorded settings and attaches them again.
"""
from __future__ import annotations

import io
import random
import shutil
from pathlib import Path
from typing import Any

import dill  # pymoo's algorithms hold local functions, which pickle cannot save
import numpy as np
import torch

from .errors import EvopruneError
from .io import atomic_write

FOLDER = "checkpoints"


def folder(out: Path) -> Path:
    return Path(out) / FOLDER


def is_unfinished(out: Path) -> bool:
    return folder(out).is_dir()


def finish(out: Path) -> None:
    """The run is complete: its checkpoints are no longer needed."""
    shutil.rmtree(folder(out), ignore_errors=True)


def random_states() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def restore_random_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])


class _Pickler(dill.Pickler):
    """Saves every reference to the search's problem (the algorithm's, and those of the copies
    pymoo makes) as a placeholder: the problem holds the model and data."""

    def __init__(self, file, problem):
        super().__init__(file)
        self.problem_type = type(problem)

    def persistent_id(self, obj):
        return "problem" if isinstance(obj, self.problem_type) else None


class _Unpickler(dill.Unpickler):
    def __init__(self, file, problem):
        super().__init__(file)
        self.problem = problem

    def persistent_load(self, pid):
        return self.problem


def save_search(out: Path, algorithm, problem, extra: Any = None) -> None:
    """Save the search after a generation: ``algorithm`` (without its problem),
    ``problem.checkpoint_state()`` (the evaluation caches), the random states and ``extra``."""
    callback, algorithm.callback = algorithm.callback, None  # the caller's own: may not pickle
    buffer = io.BytesIO()
    try:
        _Pickler(buffer, problem).dump({"algorithm": algorithm, "problem_state": problem.checkpoint_state(),
                                        "random": random_states(), "extra": extra})
    finally:
        algorithm.callback = callback
    atomic_write(folder(out) / "search.pkl", lambda tmp: tmp.write_bytes(buffer.getvalue()))


def load_search(out: Path, problem) -> tuple[Any, Any] | None:
    """The saved ``(algorithm, extra)`` of ``out``'s search, bound to ``problem`` (freshly built
    with the run's settings) and with its caches restored; None if no generation finished."""
    path = folder(out) / "search.pkl"
    if not path.is_file():
        return None
    try:
        blob = _Unpickler(io.BytesIO(path.read_bytes()), problem).load()
    except Exception as e:  # a checkpoint is written atomically: this one was damaged afterwards
        raise EvopruneError(f"{path} is damaged ({type(e).__name__}); delete it to restart the search") from None
    problem.restore_checkpoint_state(blob["problem_state"])
    restore_random_states(blob["random"])
    return blob["algorithm"], blob["extra"]
