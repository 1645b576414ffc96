"""A baseline end to end: base model, the rule's network within each budget, physical removal,
fine-tuning, run files."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from torch import nn
from tqdm.auto import tqdm

from ... import checkpoints
from ...data import DatasetSplits
from ...errors import EvopruneError
from ...fitness import count_flops, count_params, latency_ms
from ...fitness.probe import checked_structure
from ...io import write_csv, write_json
from ...models import save_pruned
from ...problems import FilterPruningProblem
from ...pruning import PrunableStructure, RatioSelection, check_criterion, format_kept, get_importance
from ...pruning.allocation import global_ranking, uniform, within_budget
from ...runs import Result, fine_tune, refusal_leaves_nothing, start_run, timed
from ...train import evaluate
from .config import BaselineConfig
from .report import write_figures

ALLOCATIONS = {"uniform": uniform, "global": global_ranking}  # the rules of config.RULES


def _check_inputs(cfg: BaselineConfig):
    def check(model: nn.Module, data: DatasetSplits) -> PrunableStructure:
        structure = checked_structure(model, data.input_shape, cfg.ignore)
        check_criterion(cfg.criterion, model, structure, data.train)
        return structure
    return check


@refusal_leaves_nothing
def run_baseline(cfg: BaselineConfig, out: str | Path, model: nn.Module | None = None,
                 data: DatasetSplits | None = None, resume: bool = False) -> Result:
    """Train (or load) the base model; for every budget in ``cfg.budgets`` prune it by ``cfg.rule``
    as little as keeps it within the budget, fine-tune and write the run directory.

    ``model``: a trained ``nn.Module`` of the user's (a copy, used as it is); ``data``: preloaded
    splits; ``resume``: continue the unfinished run in ``out`` (its base is kept, the rest redone)."""
    out = Path(out)
    setup = start_run(cfg, out, "baseline", model, data,
                      check=_check_inputs(cfg), resume=resume)
    model, arch, data, timings = setup.model, setup.arch, setup.data, setup.timings
    # the problem measures every network as a search would (sizes, slicing), never scores one here
    problem = FilterPruningProblem(model, data.val, max_drop=1.0, structure=setup.checked,
                                   objectives=(cfg.measure, "error"),
                                   selection=RatioSelection(get_importance(cfg.criterion, data.train), cfg.max_ratio,
                                                            cfg.round_to))
    base = base_metrics(model, problem, data)
    write_json(out / "base.json", base)
    save_pruned(out / "base_model.pt", model, arch, setup.meta(role="base", **base))
    rule = ALLOCATIONS[cfg.rule](problem.selection)
    size = problem.measures[0]
    layers, rows = base["layers"], []
    for n, budget in enumerate(tqdm(cfg.budgets, desc="prune and fine-tune", leave=False)):
        kept = within_budget(rule, lambda k: size.of(problem, k, None), budget)
        if kept is None:
            raise EvopruneError(f"no {cfg.rule} network keeps at most {budget:g} of the base model's {cfg.measure} "
                                f"with max_ratio={cfg.max_ratio:g}; raise the budget or --max-ratio")
        pruned = problem.pruned_network(kept)
        val_before, before = evaluate(pruned, data.val)["accuracy"], evaluate(pruned, data.test)["accuracy"]
        with timed(timings, f"finetune_{n:02d}"):
            fine_tune(pruned, data, cfg, teacher=model, seed=cfg.seed, desc=f"fine-tune {n + 1}/{len(cfg.budgets)}")
        after = evaluate(pruned, data.test)["accuracy"]
        path = out / "models" / f"pruned_{n:02d}.pt"
        filters, params, flops = sum(map(len, kept)), count_params(pruned), count_flops(pruned, data.input_shape)
        rows.append({"rule": cfg.rule, "measure": cfg.measure, "budget": budget,
                     **{f"kept_{name}": len(k) for name, k in zip(layers, kept)},
                     "filters_kept": filters, "filters_pruned_pct": 100 * (1 - filters / sum(base["filters"])),
                     "params": params, "params_pruned_pct": 100 * (1 - params / base["params"]),
                     "flops": flops, "flops_pruned_pct": 100 * (1 - flops / base["flops"]),
                     "val_accuracy_before": val_before, "test_accuracy_before": before,
                     "val_accuracy_after": evaluate(pruned, data.val)["accuracy"], "test_accuracy_after": after,
                     "latency_ms_per_batch256": latency_ms(pruned, data.input_shape),
                     "model_file": str(path.relative_to(out)),
                     **{f"keep_{name}": text for name, text in zip(layers, format_kept(kept))}})
        save_pruned(path, pruned, arch, setup.meta(role="pruned", rule=cfg.rule, budget=budget, test_accuracy=after,
                                                   kept=[list(k) for k in kept]))
        write_csv(out / "results.csv", pd.DataFrame(rows))  # each model on disk as soon as it is done
    write_json(out / "timings.json", timings)
    setup.write_layer_table(out)
    checkpoints.finish(out)
    write_figures(out)
    return Result(out, base, {"results": pd.DataFrame(rows)}, timings)


def base_metrics(model: nn.Module, problem: FilterPruningProblem, data: DatasetSplits) -> dict:
    return {"val_accuracy": problem.base.accuracy, "test_accuracy": evaluate(model, data.test)["accuracy"],
            "params": count_params(model), "flops": count_flops(model, data.input_shape),
            "latency_ms_per_batch256": latency_ms(model, data.input_shape),
            "layers": [layer.name for layer in problem.structure.layers], "filters": list(problem.channels)}
