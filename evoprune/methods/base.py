"""The method registry: one entry per pruning method, from which the command line, `evoprune
list` and `evoprune summary` are generated."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..config import Settings
from ..errors import EvopruneError
from ..registry import Registry


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


def by_command(command: str) -> Method:
    return next(m for m in (METHODS.get(n) for n in METHODS.names()) if m.command == command)


def read_run_files(run_dir: str | Path, names: tuple[str, ...], kind: str) -> dict[str, Any]:
    """The named files of a run directory (JSON as dicts, CSV as data frames), keyed by stem;
    one sentence if any is missing or unreadable."""
    run_dir = Path(run_dir)
    missing = [name for name in names if not (run_dir / name).is_file()]
    if missing:
        raise EvopruneError(f"{run_dir} is not a complete evoprune {kind} run directory (missing {', '.join(missing)})")
    files = {}
    for name in names:
        try:
            files[name.split(".")[0]] = (json.loads((run_dir / name).read_text()) if name.endswith(".json")
                                         else pd.read_csv(run_dir / name))
        except (ValueError, pd.errors.EmptyDataError) as e:
            raise EvopruneError(f"{run_dir / name} is damaged and cannot be read ({type(e).__name__})") from None
    return files


def table_text(frame: pd.DataFrame) -> str:
    """A table for a run summary: no index, four decimals."""
    return frame.to_string(index=False, float_format=lambda v: f"{v:.4f}")


def run_method(run_dir: str | Path) -> Method:
    """The method recorded in a run's ``config.json`` (runs made before methods were recorded
    are filter-pruning runs)."""
    config = read_run_files(run_dir, ("config.json",), "evoprune")["config"]
    return METHODS.get(config.get("method", "emofp"))


def summary(run_dir: str | Path) -> str:
    return run_method(run_dir).summary(Path(run_dir))
