"""Tables and figures of a GA channel-selection run directory."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...plotting import figure, finish
from ..base import read_run_files, table_text

RUN_FILES = ("config.json", "base.json", "sensitivity.csv", "layers.csv", "history.csv", "result.json")


def read_channels_run(run_dir: str | Path) -> dict:
    return read_run_files(run_dir, RUN_FILES, "channel-selection")


def summary(run_dir: str | Path) -> str:
    run = read_channels_run(run_dir)
    s, res = run["config"]["settings"], run["result"]
    layers = run["layers"][["order", "layer", "channels_before", "channels_after", "val_accuracy_start",
                            "val_accuracy_pruned", "val_accuracy_finetuned", "evaluations", "full_evaluations",
                            "screened", "seconds"]]
    screen = f"screened on {s['screen']} images first" if s["screen"] else "no screening"
    return "\n".join([
        f"run {run_dir}: GA channel selection of {s['model']} on {s['dataset']}, seed {s['seed']}",
        f"filters {res['filters_before']} -> {res['filters_after']} ({res['filters_pruned_pct']:.1f}% pruned), "
        f"params {res['params_before']:,} -> {res['params_after']:,} ({res['params_pruned_pct']:.1f}% pruned), "
        f"FLOPs {res['flops_before']:,} -> {res['flops_after']:,} ({res['flops_pruned_pct']:.1f}% pruned)",
        f"test accuracy {res['base_test_accuracy']:.4f} (base) -> {res['test_accuracy_before_finetune']:.4f} "
        f"(layers pruned) -> {res['test_accuracy']:.4f} (after final fine-tune: {res['final_finetune']})",
        f"search per layer: GA pop {s['pop_size']} x {s['generations']} generations, accuracy drop <= "
        f"{s['max_drop']:g} against the layer's starting network, {screen}",
        "sensitivity (validation drop with that layer alone losing "
        f"{100 * s['sensitivity_ratio']:.0f}% of its filters):",
        table_text(run["sensitivity"]),
        "per layer, in search order:",
        table_text(layers),
    ])


def write_figures(run_dir: str | Path) -> list[Path]:
    run_dir = Path(run_dir)
    run = read_channels_run(run_dir)
    figs = run_dir / "figures"
    return [channels_figure(run, figs / "channels_per_layer.png"), accuracy_figure(run, figs / "accuracy.png")]


def channels_figure(run: dict, path: Path) -> Path:
    """Channels each prunable layer keeps: base against pruned."""
    base, layers = run["base"], run["layers"]
    names = [str(n) for n in base["layers"]]
    after = dict(zip(layers["layer"].astype(str), layers["channels_after"]))
    pos = np.arange(len(names))
    fig, ax = figure(max(6.4, 1.2 * len(names) + 3), 4)
    ax.bar(pos - 0.2, base["filters"], 0.4, color="lightgrey", label="base")
    ax.bar(pos + 0.2, [after.get(n, c) for n, c in zip(names, base["filters"])], 0.4, color="tab:blue",
           label=f"pruned ({run['result']['filters_pruned_pct']:.0f}% of filters removed)")
    ax.set_xticks(pos, [f"layer {n}" for n in names])
    ax.set_ylabel("channels kept")
    ax.legend(fontsize=8)
    return finish(fig, path, grid=False)


def accuracy_figure(run: dict, path: Path) -> Path:
    """Validation accuracy along the layer steps, and test accuracy before and after the final fine-tune."""
    layers, res = run["layers"], run["result"]
    steps = np.arange(len(layers) + 1)
    labels = ["base", *[f"{i + 1}: layer {n}" for i, n in enumerate(layers["layer"])]]
    fig, ax = figure(max(6.4, 1.1 * len(labels) + 3), 4.4)
    ax.plot(steps, 100 * np.array([res["base_val_accuracy"], *layers["val_accuracy_pruned"]]), marker="x",
            label="validation, after pruning the layer")
    ax.plot(steps, 100 * np.array([res["base_val_accuracy"], *layers["val_accuracy_finetuned"]]), marker="o",
            label="validation, after its short fine-tune")
    ax.scatter([steps[-1] + 1], [100 * res["val_accuracy"]], marker="*", s=120, color="tab:green",
               label="validation, after the final fine-tune")
    ax.scatter([steps[-1] + 1], [100 * res["test_accuracy"]], marker="s", color="tab:red",
               label="test, after the final fine-tune")
    ax.axhline(100 * res["base_test_accuracy"], color="black", lw=0.8, ls="--", label="base model (test)")
    ax.set_xticks([*steps, steps[-1] + 1], [*labels, "final"], fontsize=8)
    ax.set_xlabel("layer step (least sensitive first)")
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=8)
    return finish(fig, path)
