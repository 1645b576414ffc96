"""DENNC end to end: base model, sensitivity analysis, rounds of (DE search of per-layer
sensitivities -> prune -> fine-tune with masks and recovery), sparse export, run directory."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pymoo.algorithms.soo.nonconvex.de import DE
from pymoo.core.algorithm import Algorithm
from pymoo.core.callback import Callback
from pymoo.operators.sampling.rnd import FloatRandomSampling
from pymoo.optimize import minimize
from torch import nn
from tqdm.auto import tqdm

from ... import checkpoints
from ...data import DatasetSplits
from ...errors import EvopruneError
from ...io import write_csv, write_json
from ...models import save_pruned
from ...problems.sampling import HalvingSeeds
from ...problems.weight_pruning import LayerwiseWeightPruningProblem
from ...pruning.masks import MaskedTraining, apply_masks, current_masks, kept_counts, prunable_weights, weight_key
from ...fitness.sensitivity import check_sweep, sensitivity_scan, upper_bounds
from ...models.sparse import file_size, save_sparse
from ...runs import BaseSetup, Result, fine_tune, refusal_leaves_nothing, start_run, timed
from ...train import evaluate, steps_per_epoch
from .config import SensitivityConfig, WeightPruningConfig
from .report import sensitivity_figure, write_figures


def make_de(cfg: WeightPruningConfig) -> DE:
    """pymoo's DE as configured. pymoo 0.6 has no dither; it applies polynomial mutation to an
    offspring with probability ``de_mutation`` (pymoo's default 0.1; 0 gives classic DE)."""
    sampling = HalvingSeeds(cfg.de_seeds) if cfg.de_seeds else FloatRandomSampling()
    return DE(pop_size=cfg.pop_size, sampling=sampling, variant=cfg.de_variant, CR=cfg.de_cr, F=cfg.de_f,
              prob_mut=cfg.de_mutation)


class BestPerGeneration(Callback):
    """One row per DE generation: evaluations and the best feasible fraction of weights kept."""

    def __init__(self, round_: int, callback=None):
        super().__init__()
        self.round, self.rows, self.callback = round_, [], callback

    def notify(self, algorithm):
        pop = algorithm.pop
        feasible = pop.get("feas")
        F = pop.get("F")[feasible, 0]
        self.rows.append({"round": self.round, "generation": algorithm.n_gen,
                          "evaluations": algorithm.evaluator.n_eval, "feasible": int(feasible.sum()),
                          "best_kept_fraction": float(F.min()) if len(F) else np.nan})
        if self.callback is not None:
            self.callback(algorithm)


def prepare_base(cfg: SensitivityConfig, out: Path, model: nn.Module | None, data: DatasetSplits | None,
                 resume: bool) -> BaseSetup:
    """Validate everything, then load the data, build and train (or load from cache) the base model
    and write ``config.json``; ``checked`` holds the layers to prune."""
    method = "dennc" if isinstance(cfg, WeightPruningConfig) else "sensitivity"

    def check(model: nn.Module, data: DatasetSplits) -> list[str]:
        size = getattr(cfg, "search_val_size", None)
        if size is not None and size > len(data.val):
            raise EvopruneError(f"search_val_size {size} is more than the {len(data.val)} validation images")
        return list(prunable_weights(model, cfg.layer_list()))

    return start_run(cfg, out, method, model, data, check=check, resume=resume)


@refusal_leaves_nothing
def run_sensitivity(cfg: SensitivityConfig, out: str | Path, model: nn.Module | None = None,
                    data: DatasetSplits | None = None, resume: bool = False) -> pd.DataFrame:
    """Train (or load) the base model, prune each layer alone at the sweep s_min..s_max and write
    ``sensitivity.csv`` and ``figures/sensitivity.png``. Returns the table.
    ``resume``: continue the unfinished run in ``out`` (its base model is kept; the later stages run
    again, with the same seeds)."""
    out = Path(out)
    setup = prepare_base(cfg, out, model, data, resume)
    model, data, layers, timings = setup.model, setup.data, setup.checked, setup.timings
    with timed(timings, "scan"):
        scan = sensitivity_scan(model, data.val, check_sweep(cfg.s_min, cfg.s_max, cfg.sweep_steps), layers,
                                batch_size=cfg.eval_batch_size)
    write_csv(out / "sensitivity.csv", scan)
    write_json(out / "timings.json", timings)
    sensitivity_figure(scan, out / "figures" / "sensitivity.png")
    checkpoints.finish(out)
    return scan


def finetune_masked(model: nn.Module, weights: dict[str, nn.Parameter], masks: dict[str, torch.Tensor],
                    data: DatasetSplits, cfg: WeightPruningConfig, seed: int, desc: str,
                    teacher: nn.Module | None = None, targets: dict[str, int] | None = None) -> int:
    """Fine-tune with the masks enforced and connections recovered as configured (distilling from
    ``teacher`` if ``cfg.distill``), tightening the masks gradually to ``targets`` (kept connections
    per layer) if given; returns how many connections were recovered."""
    with MaskedTraining(weights, masks, cfg.recovery_rate, cfg.recovery_schedule, cfg.recovery_init,
                        steps_per_epoch=steps_per_epoch(data.train, cfg.batch_size), epochs=cfg.finetune_epochs,
                        seed=seed, targets=targets, ramp=cfg.prune_ramp) as enforced:
        fine_tune(model, data, cfg, teacher, seed, desc, after_step=enforced.after_step)
    return enforced.recovered


@refusal_leaves_nothing
def run_dennc(cfg: WeightPruningConfig, out: str | Path, model: nn.Module | None = None,
              data: DatasetSplits | None = None, algorithm: Algorithm | None = None, termination=None,
              callback=None, resume: bool = False) -> Result:
    """DENNC: prune ``cfg.model`` (or a copy of the trained ``model``) in rounds until
    ``cfg.target_compression``, the round budget, the accuracy bound or a round without gain;
    write the run directory.

    ``algorithm``: any pymoo single-objective algorithm instead of DE (a fresh copy per round);
    ``termination``: each round's search termination (default ``("n_gen", cfg.generations)``);
    ``callback``: called after every generation of every round, as in pymoo's ``minimize``.
    ``resume``: continue the unfinished run in ``out`` (its base model is kept; the rounds run
    again, with the same seeds)."""
    out = Path(out)
    setup = prepare_base(cfg, out, model, data, resume)
    model, arch, data, layers = setup.model, setup.arch, setup.data, setup.checked
    weights = prunable_weights(model, layers)
    dense = {name: w.numel() for name, w in weights.items()}
    search_val = data.val.subset(cfg.search_val_size) if cfg.search_val_size else data.val
    sweep = check_sweep(cfg.s_min, cfg.s_max, cfg.sweep_steps)
    base = {"val_accuracy": evaluate(model, data.val)["accuracy"], "test_accuracy": evaluate(model, data.test)["accuracy"],
            "search_val_accuracy": evaluate(model, search_val)["accuracy"], "layers": layers, "weights": dense,
            "prunable_weights": sum(dense.values()), "params": sum(p.numel() for p in model.parameters())}
    write_json(out / "base.json", base)
    save_pruned(out / "base_model.pt", model, arch, setup.meta(role="base", **base))

    rows, scans, history = [], [], []
    best_state, best_round, stop = copy.deepcopy(model.state_dict()), 0, "round budget"
    teacher = copy.deepcopy(model).eval() if cfg.distill else None  # the dense base, frozen
    search_drop, rejected, min_kept = cfg.max_drop, 0, 0
    compression = 1.0 / (sum(kept_counts(current_masks(weights)).values()) / base["prunable_weights"])
    for r in tqdm(range(1, cfg.rounds + 1), desc="rounds", leave=False):
        t = {}
        with timed(t, "sensitivity"):
            scan = sensitivity_scan(model, search_val, sweep, layers, batch_size=cfg.eval_batch_size)
        scans.append(scan.assign(round=r))
        step = sweep[1] - sweep[0]  # a layer too sensitive even at s_min still gets one step to explore
        xu = np.array([max(b, cfg.s_min + step) for b in upper_bounds(scan, cfg.layer_drop).values()])
        with timed(t, "search"):
            # the drop is measured from this round's network: fine-tuning recovers it, accept_drop
            # guards the distance to the base
            nonzero = sum(kept_counts(current_masks(weights)).values())
            problem = LayerwiseWeightPruningProblem(model, search_val, cfg.s_min, xu, search_drop, layers,
                                                    batch_size=cfg.eval_batch_size, min_kept=min_kept)
            recorder = BestPerGeneration(r, callback)
            res = minimize(problem, copy.deepcopy(algorithm) if algorithm is not None else make_de(cfg),
                           copy.deepcopy(termination) or ("n_gen", cfg.generations), seed=cfg.seed + r,
                           callback=recorder, verbose=False)
        history += recorder.rows
        if res.X is None:
            stop = "no candidate met the search's accuracy bound" + (
                f" while keeping at least {min_kept} weights (halve_step)" if min_kept else "")
            break
        x = np.atleast_1d(res.X).astype(float)
        thresholds = problem.thresholds(x).tolist()
        searched, gradual = problem.masks(x), cfg.prune_schedule == "gradual"
        start = copy.deepcopy(model.state_dict()) if gradual else None
        apply_masks(weights, searched)
        pruned_val = evaluate(model, data.val)["accuracy"]
        if gradual:  # fine-tuning starts from the round's network and prunes as it goes
            model.load_state_dict(start)
        targets = kept_counts(searched) if gradual else None
        with timed(t, "finetune"):
            recovered = finetune_masked(model, weights, current_masks(weights), data, cfg, cfg.seed + r,
                                        f"fine-tune round {r}", teacher, targets)
        kept, searched_kept = kept_counts(current_masks(weights)), sum(kept_counts(searched).values())
        new_compression = base["prunable_weights"] / sum(kept.values())
        val_acc, test_acc = evaluate(model, data.val)["accuracy"], evaluate(model, data.test)["accuracy"]
        accepted = val_acc >= base["val_accuracy"] - cfg.accept_drop
        row = {"round": r, "max_drop": search_drop, "min_kept": min_kept, **{f"s_{n}": s for n, s in zip(layers, x)},
               **{f"threshold_{n}": th for n, th in zip(layers, thresholds)},
               **{f"upper_{n}": u for n, u in zip(layers, xu)}, **{f"kept_{n}": k for n, k in kept.items()},
               "kept_fraction": 1 / new_compression, "compression": new_compression,
               "searched_compression": base["prunable_weights"] / searched_kept,
               "val_accuracy_pruned": pruned_val, "val_accuracy": val_acc, "test_accuracy": test_acc,
               "recovered": recovered, "accepted": accepted, "evaluations": int(res.algorithm.evaluator.n_eval),
               "networks_evaluated": problem.evaluator.computed, **{f"seconds_{k}": v for k, v in t.items()}}
        rows.append(row)
        write_csv(out / "rounds.csv", pd.DataFrame(rows))  # each round on disk as soon as it ends
        if not accepted:
            # too big a step: go back to the last accepted network and search with half the drop
            rejected += 1
            model.load_state_dict(best_state)
            search_drop /= 2
            if cfg.halve_step:  # the geometric midpoint between this round's start and the rejected search's
                # network (before fine-tuning, whose recovered connections the search never chose)
                min_kept = math.ceil(math.sqrt(nonzero * searched_kept))
            if rejected >= cfg.patience:
                stop = (f"{rejected} rounds in a row left validation accuracy more than "
                        f"accept_drop={cfg.accept_drop:g} below the base")
                break
            continue
        best_state, best_round, rejected, min_kept = copy.deepcopy(model.state_dict()), r, 0, 0
        if new_compression >= cfg.target_compression:
            stop = "target compression reached"
            break
        if new_compression < compression * (1 + cfg.min_gain):
            stop = f"the round added less than min_gain={cfg.min_gain:g} compression"
            break
        compression = new_compression

    model.load_state_dict(best_state)
    return _finish(out, cfg, setup, base, rows, scans, history, best_round, stop)


def _finish(out, cfg, setup, base, rows, scans, history, best_round, stop):
    model, arch, data, layers, timings = setup.model, setup.arch, setup.data, setup.checked, setup.timings
    if not rows:
        raise EvopruneError(f"no candidate of round 1 met the accuracy bound max_drop={cfg.max_drop:g}; loosen "
                            "--max-drop, lower --s-max or start DE from smaller steps with --de-seeds")
    rounds = pd.DataFrame(rows)
    write_csv(out / "rounds.csv", rounds)
    write_csv(out / "sensitivity.csv", pd.concat(scans, ignore_index=True))
    write_csv(out / "history.csv", pd.DataFrame(history))
    kept = kept_counts(current_masks(prunable_weights(model, layers)))
    last = rounds[rounds["round"] == best_round].iloc[0] if best_round else None
    table = pd.DataFrame([{"layer": n, "weights_before": base["weights"][n], "weights_after": kept[n],
                           "kept_pct": 100 * kept[n] / base["weights"][n],
                           "sensitivity": last[f"s_{n}"] if last is not None else np.nan,
                           "threshold": last[f"threshold_{n}"] if last is not None else np.nan} for n in layers])
    write_csv(out / "layers.csv", table)
    test = evaluate(model, data.test)["accuracy"]
    meta = setup.meta(role="pruned", round=best_round, test_accuracy=test)
    dense_path = save_pruned(out / "pruned_model.pt", model, arch, meta)
    result = {"rounds_run": len(rows), "best_round": best_round, "stop_reason": stop,
              "compression": base["prunable_weights"] / sum(kept.values()), "nonzero_weights": sum(kept.values()),
              "dense_weights": base["prunable_weights"], "base_test_accuracy": base["test_accuracy"],
              "pruned_test_accuracy": test, "base_val_accuracy": base["val_accuracy"],
              "pruned_val_accuracy": evaluate(model, data.val)["accuracy"], "dense_file_bytes": file_size(dense_path)}
    sparse_path = save_sparse(out / "pruned_model.sparse.pt", model, arch, [weight_key(n) for n in layers], meta)
    result["sparse_file_bytes"] = file_size(sparse_path)
    timings.update({k: round(float(rounds[f"seconds_{k}"].sum()), 2) if len(rounds) else 0.0
                    for k in ("sensitivity", "search", "finetune")})
    write_json(out / "result.json", result)
    write_json(out / "timings.json", timings)
    write_figures(out)
    checkpoints.finish(out)
    return Result(out, base, {"rounds": rounds, "layers": table}, timings, {"result": result})
