"""Clustering filter pruning end to end: base model, learned filter features, k-means per layer
at each pruning ratio, physical removal, fine-tuning, run files."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from torch import nn
from tqdm.auto import tqdm

from ... import checkpoints
from ...data import DatasetSplits
from ...fitness import count_flops, count_params
from ...fitness.probe import checked_structure
from ...io import write_csv, write_json
from ...models import save_pruned
from ...pruning import ClusterSelection, PrunableStructure, format_kept, kept_tensors, physically_prune
from ...runs import Result, fine_tune, refusal_leaves_nothing, start_run, timed
from ...train import evaluate
from .config import ClusterConfig
from .report import write_figures


@refusal_leaves_nothing
def run_cluster(cfg: ClusterConfig, out: str | Path, model: nn.Module | None = None,
                data: DatasetSplits | None = None, resume: bool = False) -> Result:
    """Train (or load) the base model; for every ratio in ``cfg.ratios`` remove that fraction of
    every layer's filters, keeping the filter nearest each k-means centroid of learned filter
    features; fine-tune each pruned model and write the run directory.

    ``model``: a trained ``nn.Module`` of the user's, used as it is (a copy; set
    ``cfg.train_given_model`` to train it first); ``data``: preloaded splits.
    ``resume``: continue the unfinished run in ``out`` (its base model is kept; the later stages run
    again, with the same seeds)."""
    out = Path(out)
    setup = start_run(cfg, out, "cluster", model, data,
                      check=lambda m, d: checked_structure(m, d.input_shape, cfg.ignore), resume=resume)
    model, arch, data, structure, timings = setup.model, setup.arch, setup.data, setup.checked, setup.timings

    base = base_metrics(model, structure, data)
    write_json(out / "base.json", base)
    save_pruned(out / "base_model.pt", model, arch, setup.meta(role="base", **base))

    with timed(timings, "features"):
        selection = ClusterSelection(max(cfg.ratios), seed=cfg.seed).bind(model, structure)
    layers, total = base["layers"], sum(base["filters"])
    rows = []
    for n, ratio in enumerate(tqdm(cfg.ratios, desc="prune and fine-tune", leave=False)):
        with timed(timings, f"cluster_{n:02d}"):
            kept = selection.keep([ratio] * len(layers))
        pruned = physically_prune(model, structure, kept_tensors(kept))
        val_before = evaluate(pruned, data.val)["accuracy"]
        before = evaluate(pruned, data.test)["accuracy"]
        with timed(timings, f"finetune_{n:02d}"):
            fine_tune(pruned, data, cfg, teacher=model, seed=cfg.seed,
                      desc=f"fine-tune {n + 1}/{len(cfg.ratios)} (ratio {ratio:g})")
        after = evaluate(pruned, data.test)["accuracy"]
        path = out / "models" / f"pruned_{n:02d}.pt"
        filters, params, flops = sum(map(len, kept)), count_params(pruned), count_flops(pruned, data.input_shape)
        rows.append({"ratio": ratio, **{f"kept_{name}": len(k) for name, k in zip(layers, kept)},
                     **{f"keep_{name}": text for name, text in zip(layers, format_kept(kept))},
                     "filters_kept": filters, "filters_pruned_pct": 100 * (1 - filters / total),
                     "params": params, "params_pruned_pct": 100 * (1 - params / base["params"]),
                     "flops": flops, "flops_pruned_pct": 100 * (1 - flops / base["flops"]),
                     "val_accuracy_before": val_before, "test_accuracy_before": before,
                     "test_accuracy_after": after, "model_file": str(path.relative_to(out))})
        save_pruned(path, pruned, arch, setup.meta(role="pruned", ratio=ratio, test_accuracy=after,
                                                   kept=[list(k) for k in kept]))
        write_csv(out / "results.csv", pd.DataFrame(rows))  # each model on disk as soon as it is done
    results = pd.DataFrame(rows)
    write_json(out / "timings.json", timings)
    setup.write_layer_table(out)
    checkpoints.finish(out)
    write_figures(out)
    return Result(out, base, {"results": results}, timings)


def base_metrics(model: nn.Module, structure: PrunableStructure, data: DatasetSplits) -> dict:
    return {
        "val_accuracy": evaluate(model, data.val)["accuracy"],
        "test_accuracy": evaluate(model, data.test)["accuracy"],
        "params": count_params(model),
        "flops": count_flops(model, data.input_shape),
        "layers": [layer.name for layer in structure.layers],
        "filters": [layer.channels for layer in structure.layers],
    }
