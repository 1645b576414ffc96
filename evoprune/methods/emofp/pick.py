"""Choosing one network from a finished filter-pruning run's front, by pymoo's multi-criteria
decision making or by a plain constraint, and fine-tuning it if it has not been."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pymoo.decomposition.asf import ASF
from pymoo.mcdm.high_tradeoff import HighTradeoffPoints
from pymoo.mcdm.pseudo_weights import PseudoWeights
from torch import nn

from ... import checkpoints
from ...data import DatasetSplits
from ...errors import EvopruneError
from ...models import load_pruned
from ...problems.measures import MEASURES, column, sizes
from ...pruning import PrunableStructure
from ...runs import BaseSetup, check_same_data, load_run_data
from ..base import require_callers_parts
from .config import FilterSearchConfig
from .pipeline import build_problem, finetune_selected
from .report import read_run

# a bound on a size's absolute column of the front: the most accurate network within it
SIZE_BOUNDS = {f"max-{name}": MEASURES.get(name).absolute for name in sizes() if MEASURES.get(name).absolute}
BY = ("knee", "asf", "pseudo-weights", "max-drop", *SIZE_BOUNDS)


def choose(pareto: pd.DataFrame, objectives: tuple[str, ...], by: str, value=None) -> int:
    """The front row (index of ``pareto``) chosen ``by``:

    - ``knee``: pymoo's high trade-off point (the first, by size, if there are several);
    - ``asf`` / ``pseudo-weights``: pymoo's achievement scalarisation or pseudo-weights, with
      ``value`` one weight per objective (how much it matters), in the order of ``objectives``;
    - ``max-drop``: the smallest network whose validation accuracy drop is at most ``value``;
    - ``max-filters`` / ``max-flops`` / ``max-params``: the most accurate network with at most
      ``value`` filters / FLOPs / parameters kept (a bound on any size of ``measures.MEASURES``
      that has an absolute column).
    Objectives are normalised to the front's range before the first three."""
    if by not in BY:
        raise EvopruneError(f"unknown choice {by!r}; known: {', '.join(BY)}")
    F = pareto[[column(o) for o in objectives]].to_numpy(dtype=float)
    span = F.max(axis=0) - F.min(axis=0)
    normal = (F - F.min(axis=0)) / np.where(span > 0, span, 1)
    if by == "knee":
        found = HighTradeoffPoints().do(normal) if len(F) > 2 else None
        if found is None or len(np.atleast_1d(found)) == 0:
            raise EvopruneError(f"the front's {len(F)} networks have no clear knee; choose with asf or pseudo-weights")
        return int(pareto.index[sorted(np.atleast_1d(found))[0]])
    if by in ("asf", "pseudo-weights"):
        weights = _weights(value, len(objectives), by)
        # a weight is how much an objective matters, as in pseudo-weights: ASF takes its inverse
        # (as in pymoo's decision-making guide)
        i = (ASF().do(normal, 1 / np.maximum(weights, 1e-6), utopian_point=np.zeros(len(objectives))).argmin()
             if by == "asf" else PseudoWeights(weights).do(F))
        return int(pareto.index[int(i)])
    limit = _number(value, by)
    if by == "max-drop" and not limit <= 1:
        raise EvopruneError(f"max-drop value {value!r} is an accuracy drop as a fraction, at most 1 (0.02 for 2 points)")
    bounded = SIZE_BOUNDS.get(by, "accuracy_drop")
    allowed = pareto[bounded] <= limit
    if not allowed.any():
        raise EvopruneError(f"no network on the front has {bounded} <= {limit:g} (smallest: "
                            f"{pareto[bounded].min():g})")
    size = next(column(o) for o in objectives if o != "error")
    return int(pareto[allowed][size if by == "max-drop" else "val_error"].idxmin())


def pick(run_dir: str | Path, by: str, value=None, model: nn.Module | None = None,
         data: DatasetSplits | None = None) -> pd.Series:
    """Choose a network from the front of the finished run in ``run_dir`` (see ``choose``), fine-tune
    it as the run fine-tuned its selected models unless its slot already was (then the slot's row
    is returned: with ``finalists`` its network may be another, no larger in filters, parameters
    and FLOPs, that did better on the validation split), and return its row of ``finetuned.csv``.
    A run made with the caller's own model or data needs them again."""
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    if checkpoints.is_unfinished(run_dir):
        raise EvopruneError(f"the run in {run_dir} is unfinished; complete it with `evoprune resume {run_dir}` first")
    cfg = FilterSearchConfig(**run["config"]["settings"]).validate()
    row = choose(run["pareto"], tuple(cfg.objectives), by, value)
    finetuned = run["finetuned"]
    if row not in set(finetuned["pareto_row"]):
        setup = _reopen(run_dir, run["config"], cfg, model, data)
        finetuned = finetune_selected(run["pareto"].loc[[row]], build_problem(cfg, setup), setup, cfg, run_dir)
        setup.write_layer_table(run_dir)
    return finetuned.set_index("pareto_row").loc[row]


def _reopen(run_dir: Path, config: dict, cfg: FilterSearchConfig, model: nn.Module | None,
            data: DatasetSplits | None) -> BaseSetup:
    """The run's trained base model and data, as its search saw them."""
    require_callers_parts(run_dir, config, model, data, "evoprune.methods.emofp.pick.pick")
    if data is None:
        data = load_run_data(cfg)
    check_same_data(config["data"], data.check(), f"{run_dir} was made with", "pass the run's own data")
    base = load_pruned(run_dir / "base_model.pt", model)
    return BaseSetup(base, config.get("arch"), data, PrunableStructure(base, data.input_shape, cfg.ignore), {}, config["data"])


def _weights(value, n: int, by: str) -> np.ndarray:
    try:
        weights = np.array([float(v) for v in (value.split(",") if isinstance(value, str) else value)])
    except (TypeError, ValueError):
        weights = np.array([])
    if len(weights) != n or not np.all(np.isfinite(weights)) or (weights < 0).any() or weights.sum() <= 0:
        raise EvopruneError(f"{by} needs {n} non-negative weights, one per objective, got {value!r}")
    return weights / weights.sum()


def _number(value, by: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number) or number < 0:
        raise EvopruneError(f"{by} needs a number >= 0, got {value!r}")
    return number
