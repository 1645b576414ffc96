"""The method registry: one entry per pruning method, from which the command line, `evoprune
list` and `evoprune summary` are generated."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from .. import checkpoints
from ..config import Settings
from ..data import DATASETS
from ..errors import EvopruneError
from ..fingerprints import weights_fingerprint
from ..registry import Registry
from ..runs import check_same_data


@dataclass(frozen=True)
class Method:
    """A pruning method: the name recorded in every run's ``config.json``, its command-line
    subcommand, its settings, the pipeline ``run(cfg, out, **api)`` and the report of a finished
    run directory ``summary(run_dir) -> str``."""

    name: str
    command: str
    help: str
    description: str
    config: type[Settings]
    run: Callable[..., Any]
    summary: Callable[[Path], str]


METHODS: Registry[Method] = Registry("method")


def register(method: Method) -> Method:
    return METHODS.register(method.name)(method)


def all_methods() -> list[Method]:
    return [METHODS.get(n) for n in METHODS.names()]


def by_command(command: str) -> Method:
    return next(m for m in all_methods() if m.command == command)


def by_settings(cfg: Settings) -> Method:
    """The method whose settings ``cfg`` are; one sentence if none."""
    found = next((m for m in all_methods() if isinstance(cfg, m.config)), None)
    if found is None:
        raise EvopruneError(f"{type(cfg).__name__} are not the settings of any method; known: "
                            f"{', '.join(m.config.__name__ for m in all_methods())}")
    return found


def read_run_files(run_dir: str | Path, names: tuple[str, ...], kind: str = "") -> dict[str, Any]:
    """The named files of a run directory (JSON as dicts, CSV as data frames), keyed by stem;
    one sentence if any is missing or unreadable."""
    run_dir = Path(run_dir)
    missing = [name for name in names if not (run_dir / name).is_file()]
    if missing:
        what = " ".join(w for w in ("evoprune", kind, "run directory") if w)
        raise EvopruneError(f"{run_dir} is not a complete {what} (missing {', '.join(missing)})")
    files = {}
    for name in names:
        try:
            files[name.split(".")[0]] = (json.loads((run_dir / name).read_text()) if name.endswith(".json")
                                         else pd.read_csv(run_dir / name))
        except (ValueError, pd.errors.EmptyDataError) as e:
            raise EvopruneError(f"{run_dir / name} is damaged and cannot be read ({type(e).__name__})") from None
        if name.endswith(".json") and not isinstance(files[name.split(".")[0]], dict):
            raise EvopruneError(f"{run_dir / name} is damaged: it holds no JSON object")
    return files


def table_text(frame: pd.DataFrame) -> str:
    """A table for a run summary: no index, four decimals."""
    return frame.to_string(index=False, float_format=lambda v: f"{v:.4f}")


def run_method(run_dir: str | Path) -> Method:
    """The method recorded in a run's ``config.json`` (runs made before methods were recorded
    are filter-pruning runs)."""
    config = read_run_files(run_dir, ("config.json",))["config"]
    return METHODS.get(config.get("method", "emofp"))


def summary(run_dir: str | Path) -> str:
    try:
        return run_method(run_dir).summary(Path(run_dir)) + layer_text(Path(run_dir))
    except KeyError as e:  # a run file edited or written by another version
        key = e.args[0] if e.args and isinstance(e.args[0], str) and len(e.args[0]) < 80 else "a key or column"
        raise EvopruneError(f"a file of the run in {run_dir} is damaged: it lacks {key}") from None


def layer_text(run_dir: Path) -> str:
    """The output channels of every layer some saved model prunes, per model (``layer_costs.csv``)."""
    if not (run_dir / "layer_costs.csv").is_file():
        return ""
    rows = pd.read_csv(run_dir / "layer_costs.csv", dtype={"layer": str})
    table = rows.pivot(index="layer", columns="model", values="channels")
    order = list(dict.fromkeys(rows["layer"]))
    pruned = table.loc[[layer for layer in order if table.loc[layer].nunique() > 1]]
    columns = ["base", *[c for c in pruned.columns if c != "base"]]
    return "\nchannels per pruned layer (layer_costs.csv also has parameters and FLOPs):\n" + \
        pruned[columns].to_string()


def resume(run_dir: str | Path, **api) -> Any:
    """Continue the unfinished run in ``run_dir`` with the settings recorded there. A run started
    from the Python API with the caller's own model or data needs them again (``model=``,
    ``data=``, as its method's ``run`` takes them)."""
    run_dir = Path(run_dir)
    config = read_run_files(run_dir, ("config.json",))["config"]
    method = run_method(run_dir)
    if not checkpoints.is_unfinished(run_dir):
        raise EvopruneError(f"the run in {run_dir} is complete: nothing to resume")
    require_callers_parts(run_dir, config, api.get("model"), api.get("data"), "evoprune.methods.resume")
    try:
        cfg = method.config(**config["settings"])
    except TypeError as e:
        raise EvopruneError(f"{run_dir / 'config.json'} does not hold {method.name} settings ({e})") from None
    return method.run(cfg, run_dir, resume=True, **api)


def run_or_reuse(cfg: Settings, out: str | Path, **api) -> Path:
    """Make the run of ``cfg``'s method in ``out`` once: start it if ``out`` holds none, continue it if
    it was interrupted, reuse it if it is finished; returns ``out``. A run found there must have been
    made with these settings (the cache directory aside, which does not change results) and, if
    given, this model and data: otherwise one sentence says what differs, and nothing is shown for
    settings it was not made with."""
    out, method = Path(out), by_settings(cfg)
    if not (out / "config.json").is_file():
        method.run(cfg, out, **api)
        return out
    config = read_run_files(out, ("config.json",))["config"]
    if config.get("method", "emofp") != method.name:
        raise EvopruneError(f"{out} holds a {config.get('method', 'emofp')} run, not a {method.name} one; "
                            "remove it or choose another directory")
    made, wanted = config["settings"], json.loads(json.dumps(cfg.to_dict()))
    differ = sorted(k for k in {*made, *wanted} - {"cache_dir"} if made.get(k) != wanted.get(k))
    if differ:
        raise EvopruneError(f"{out} holds a run made with other settings ({', '.join(differ)}); remove it or "
                            "choose another directory")
    model, data = api.get("model"), api.get("data")
    if model is not None and config.get("base_weights") not in (None, weights_fingerprint(model)):
        raise EvopruneError(f"the given model's weights differ from those {out} was made with; remove it or "
                            "choose another directory")
    if data is not None:
        check_same_data(config.get("data", {}), data.check(), f"{out} was made with",
                        "remove it or choose another directory")
    if checkpoints.is_unfinished(out):
        resume(out, **api)
    return out


def require_callers_parts(run_dir: Path, config: dict, model, data, call: str) -> None:
    """A run made with the caller's own model or data splits cannot rebuild them from its files:
    say so unless they are given again."""
    if config.get("arch") is None and model is None:
        raise EvopruneError(f"{run_dir} was started with a model of the caller's: call {call}(run_dir, model=..., "
                            "data=...) from Python, passing the same model")
    if config.get("data", {}).get("dataset") not in DATASETS and data is None:
        raise EvopruneError(f"{run_dir} was started with data splits of the caller's: call {call}(run_dir, data=...) "
                            "from Python, passing the same data")
