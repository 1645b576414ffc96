"""Checkpoints inside a run directory, so that a killed or interrupted run continues where it
stopped (``evoprune resume``). They live in ``RUN/checkpoints/`` until the run finishes; a run
directory holding that folder is an unfinished run.

What is saved: the trained base weights, and after every generation of a search the pymoo
algorithm's state (populations, random generator, counters, termination), the evaluation caches,
the history rows and the global random states. All of it is data: JSON and arrays in one ``.npz``
read with ``allow_pickle=False`` (weights with ``torch.load(weights_only=True)``), so that
resuming or reading a run directory never executes code from it. The algorithm object itself is
rebuilt from the run's settings and its state set from the file; the model and data are rebuilt
from ``config.json``.
"""
from __future__ import annotations

import copy
import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pymoo.core.individual import Individual
from pymoo.core.population import Population

from .errors import EvopruneError
from .io import atomic_write
from .scoring import Score

FOLDER = "checkpoints"
SEARCH = "search.npz"
BIT_GENERATORS = {g.__name__: g for g in (np.random.PCG64, np.random.PCG64DXSM, np.random.MT19937, np.random.Philox,
                                          np.random.SFC64)}


def folder(out: Path) -> Path:
    return Path(out) / FOLDER


def is_unfinished(out: Path) -> bool:
    return folder(out).is_dir()


def finish(out: Path) -> None:
    """The run is complete: its checkpoints are no longer needed."""
    shutil.rmtree(folder(out), ignore_errors=True)


def random_states() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state().numpy()}


def restore_random_states(states: dict) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(tuple(states["numpy"]))
    torch.set_rng_state(torch.from_numpy(np.asarray(states["torch"], dtype=np.uint8)))


def save_search(out: Path, algorithm, problem, extra: Any = None) -> None:
    """Save the search after a generation: the state of ``algorithm``, ``problem.checkpoint_state()``
    (the evaluation caches), the random states and ``extra``."""
    arrays: dict[str, np.ndarray] = {}
    state = {"algorithm": _object_state(algorithm, arrays, set()), "problem_state": problem.checkpoint_state(),
             "random": random_states(), "extra": extra}
    arrays["state"] = np.frombuffer(json.dumps(_encode(state, arrays)).encode(), dtype=np.uint8)
    atomic_write(folder(out) / SEARCH, lambda tmp: _save_npz(tmp, arrays))


def load_search(out: Path, problem, algorithm, termination, seed: int) -> tuple[Any, Any] | None:
    """The saved ``(algorithm, extra)`` of ``out``'s search: ``algorithm`` (as the run's settings
    build it) set up on ``problem`` and given the saved state, the problem's caches restored;
    None if no generation finished."""
    path = folder(out) / SEARCH
    if not path.is_file():
        if (folder(out) / "search.pkl").is_file():
            raise EvopruneError(f"{folder(out) / 'search.pkl'} was written by an older evoprune as a pickle, which is "
                                "never read (a pickle can run code); start the run again")
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        state = _decode(json.loads(arrays.pop("state").tobytes()), arrays)
    except Exception as e:  # a checkpoint is written atomically: this one was damaged afterwards
        raise EvopruneError(f"{path} is damaged ({type(e).__name__}); delete it to restart the search") from None
    algorithm = copy.deepcopy(algorithm)
    algorithm.setup(problem, termination=copy.deepcopy(termination), seed=seed, verbose=False)
    _restore_object(algorithm, state["algorithm"])
    problem.restore_checkpoint_state(state["problem_state"])
    restore_random_states(state["random"])
    return algorithm, state["extra"]


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


# What a pymoo algorithm holds that is rebuilt, never saved: the problem (with the model and data),
# the caller's callback, and the console output.
_REBUILT = {"problem", "callback", "display", "output"}


def _object_state(obj, arrays: dict, seen: set) -> dict:
    """The data of a pymoo object, attribute by attribute, descending into the pymoo objects it
    holds; functions and other code are left out (the rebuilt object has its own)."""
    seen.add(id(obj))
    state = {}
    for name, value in vars(obj).items():
        if name in _REBUILT or id(value) in seen:
            continue
        if _is_pymoo_object(value):
            state[name] = {"__object__": _object_state(value, arrays, seen)}
        elif _is_data(value):
            state[name] = value
    return state


def _restore_object(obj, state: dict) -> None:
    for name, value in state.items():
        if isinstance(value, dict) and "__object__" in value:
            current = getattr(obj, name, None)
            if current is not None:
                _restore_object(current, value["__object__"])
        else:
            setattr(obj, name, value)


def _is_pymoo_object(value) -> bool:
    return type(value).__module__.startswith("pymoo.") and hasattr(value, "__dict__") and not isinstance(
        value, (Population, Individual))


def _is_data(value) -> bool:
    """Whether ``value`` is made of data only (numbers, text, arrays, populations, generators)."""
    if value is None or isinstance(value, (bool, int, float, str, np.generic, np.random.Generator, Score)):
        return True
    if isinstance(value, Population):
        return all(_is_data(_own(ind)) for ind in value)
    if isinstance(value, Individual):
        return _is_data(_own(value))
    if isinstance(value, np.ndarray):
        return value.dtype != object
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (list, tuple, set)):
        return all(_is_data(v) for v in value)
    if isinstance(value, dict):
        return all(_is_data(k) and _is_data(v) for k, v in value.items())
    return False


def _encode(value, arrays: dict):
    """``value`` as JSON, its arrays stored in ``arrays`` under the keys the JSON names."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return {"__scalar__": value.item(), "dtype": value.dtype.str}
    if isinstance(value, Population):  # before arrays: a population is one
        return {"__population__": [_encode(_own(ind), arrays) for ind in value]}
    if isinstance(value, (np.ndarray, torch.Tensor)):
        key = f"a{len(arrays)}"
        arrays[key] = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        return {"__tensor__" if isinstance(value, torch.Tensor) else "__array__": key}
    if isinstance(value, np.random.Generator):
        return {"__generator__": _encode(value.bit_generator.state, arrays)}
    if isinstance(value, Score):
        return {"__score__": [value.accuracy, value.loss, value.images]}
    if isinstance(value, Individual):
        return {"__individual__": _encode(_own(value), arrays)}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, arrays) for v in value]}
    if isinstance(value, set):
        return {"__set__": [_encode(v, arrays) for v in sorted(value, key=repr)]}
    if isinstance(value, list):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, dict):  # keys of any type, in their order
        return {"__dict__": [[_encode(k, arrays), _encode(v, arrays)] for k, v in value.items()]}
    raise TypeError(f"cannot save a {type(value).__name__} in a checkpoint")


def _decode(value, arrays: dict):
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    (tag, content), = ((k, v) for k, v in value.items() if k.startswith("__"))
    if tag == "__scalar__":
        return np.dtype(value["dtype"]).type(content)
    if tag == "__array__":
        return arrays[content]
    if tag == "__tensor__":
        return torch.from_numpy(arrays[content].copy())
    if tag == "__generator__":
        state = _decode(content, arrays)
        generator = np.random.Generator(BIT_GENERATORS[state["bit_generator"]]())
        generator.bit_generator.state = state
        return generator
    if tag == "__score__":
        return Score(*content)
    if tag == "__population__":
        return Population.create(*[_individual(_decode(v, arrays)) for v in content])
    if tag == "__individual__":
        return _individual(_decode(content, arrays))
    if tag == "__tuple__":
        return tuple(_decode(v, arrays) for v in content)
    if tag == "__set__":
        return {_decode(v, arrays) for v in content}
    if tag == "__dict__":
        return {_decode(k, arrays): _decode(v, arrays) for k, v in content}
    raise ValueError(f"unknown tag {tag}")


def _own(ind: Individual) -> dict:
    """An individual's values; its ``config`` (pymoo's defaults, holding functions) is rebuilt."""
    return {k: v for k, v in vars(ind).items() if k != "config"}


def _individual(attributes: dict) -> Individual:
    ind = Individual()
    ind.__dict__.update(attributes)
    return ind
