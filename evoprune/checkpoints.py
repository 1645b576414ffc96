"""Checkpoints inside a run directory, so that a killed or interrupted run continues where it
stopped (``evoprune resume``). They live in ``RUN/checkpoints/`` until the run finishes; a run
directory holding that folder is an unfinished run.

What is saved: the trained base weights, and after every generation of a search the pymoo
algorithm (population, random generator, termination state), the evaluation caches, the history
rows and the global random states. The model and data are never pickled: a resumed run rebuilds
them from its recorded settings and attaches them again.
"""
from __future__ import annotations

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


def save_search(out: Path, algorithm, problem, extra: Any = None) -> None:
    """Save the search after a generation: ``algorithm`` (whose problem leaves its model and data
    out of the pickle), ``problem.checkpoint_state()`` (the evaluation caches) and ``extra``."""
    callback, algorithm.callback = algorithm.callback, None  # the caller's own: may not pickle
    try:
        blob = dill.dumps({"algorithm": algorithm, "problem_state": problem.checkpoint_state(),
                           "random": random_states(), "extra": extra})
    finally:
        algorithm.callback = callback
    atomic_write(folder(out) / "search.pkl", lambda tmp: tmp.write_bytes(blob))


def load_search(out: Path, problem) -> tuple[Any, Any] | None:
    """The saved ``(algorithm, extra)`` of ``out``'s search, bound to ``problem`` (freshly built
    with the run's settings) and with its caches restored; None if no generation finished."""
    path = folder(out) / "search.pkl"
    if not path.is_file():
        return None
    try:
        blob = dill.loads(path.read_bytes())
    except Exception as e:  # a checkpoint is written atomically: this one was damaged afterwards
        raise EvopruneError(f"{path} is damaged ({type(e).__name__}); delete it to restart the search") from None
    algorithm = blob["algorithm"]
    saved = algorithm.problem
    for key in problem.HEAVY:  # the pickled problem's model and data: the freshly built ones
        setattr(saved, key, getattr(problem, key))
    problem.restore_checkpoint_state(blob["problem_state"])
    restore_random_states(blob["random"])
    return algorithm, blob["extra"]
