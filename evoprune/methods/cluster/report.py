"""Tables and figures of a clustering filter-pruning run directory."""
from __future__ import annotations

from pathlib import Path

from ...plotting import accuracy_figure, filters_figure
from ..base import read_run_files

RUN_FILES = ("config.json", "base.json", "results.csv")


def read_run(run_dir: str | Path) -> dict:
    return read_run_files(run_dir, RUN_FILES, "clustering")


def summary(run_dir: str | Path) -> str:
    run = read_run(run_dir)
    s, base, results = run["config"]["settings"], run["base"], run["results"]
    cols = ["ratio", "filters_kept", "filters_pruned_pct", "params", "params_pruned_pct", "flops_pruned_pct",
            "val_accuracy_before", "test_accuracy_before", "test_accuracy_after", "model_file"]
    table = results[cols].rename(columns={"filters_pruned_pct": "filters_pruned_%", "params_pruned_pct": "params_pruned_%",
                                          "flops_pruned_pct": "flops_pruned_%", "val_accuracy_before": "val_acc_before",
                                          "test_accuracy_before": "test_acc_before",
                                          "test_accuracy_after": "test_acc_after"})
    return "\n".join([
        f"run {run_dir}: clustering filter selection of {s['model']} on {s['dataset']}, seed {s['seed']}",
        f"base: {sum(base['filters'])} filters {base['filters']}, {base['params']:,} params, {base['flops']:,} FLOPs, "
        f"test accuracy {base['test_accuracy']:.4f}",
        f"pruned models (the same ratio in every layer; fine-tuning epochs: {s['finetune_epochs']}):",
        table.to_string(index=False, float_format=lambda v: f"{v:.4f}"),
    ])


def write_figures(run_dir: str | Path) -> list[Path]:
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    figs = run_dir / "figures"
    # the per-layer bar chart reads the same columns as EMOFP's fine-tuned table
    settings = run["config"]["settings"]
    title = f"clustering filter selection: {settings['model']} on {settings['dataset']}"
    return [accuracy_figure(run, figs / "accuracy.png", "filters_pruned_pct", title),
            filters_figure({"base": run["base"], "finetuned": run["results"]}, figs / "filters_per_layer.png")]
