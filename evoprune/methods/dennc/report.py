"""Tables and figures of a weight-pruning (DENNC) run directory."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...plotting import figure, finish
from ..base import read_run_files, table_text

RUN_FILES = ("config.json", "base.json", "rounds.csv", "layers.csv", "sensitivity.csv", "result.json")


def read_weights_run(run_dir: str | Path) -> dict:
    return read_run_files(run_dir, RUN_FILES, "weight-pruning")


def sensitivity_summary(run_dir: str | Path) -> str:
    scan = read_run_files(run_dir, ("sensitivity.csv",), "sensitivity")["sensitivity"]
    return table_text(scan)


def weights_summary(run_dir: str | Path) -> str:
    run = read_weights_run(run_dir)
    s, res = run["config"]["settings"], run["result"]
    rounds = run["rounds"][["round", "compression", "val_accuracy_pruned", "val_accuracy", "test_accuracy",
                            "recovered", "accepted"]]
    sizes = (f"sparse file {res['sparse_file_bytes']:,} bytes vs dense {res['dense_file_bytes']:,} bytes "
             f"({res['dense_file_bytes'] / res['sparse_file_bytes']:.1f}x smaller)")
    # with --layers the figures count the pruned layers only (evaluate counts every layer)
    where = f" in the pruned layers {s['layers']}" if s.get("layers") else ""
    return "\n".join([
        f"run {run_dir}: DENNC weight pruning of {s['model']} on {s['dataset']}, seed {s['seed']}",
        f"compression {res['compression']:.1f}x ({res['nonzero_weights']:,} of {res['dense_weights']:,} weights "
        f"kept{where}), test accuracy {res['base_test_accuracy']:.4f} -> {res['pruned_test_accuracy']:.4f}",
        f"rounds: {res['rounds_run']} run, round {res['best_round']} kept; stopped: {res['stop_reason']}",
        sizes,
        "per layer:",
        table_text(run["layers"]),
        "per round:",
        table_text(rounds),
    ])


def write_figures(run_dir: str | Path) -> list[Path]:
    run_dir = Path(run_dir)
    run = read_weights_run(run_dir)
    figs = run_dir / "figures"
    scan = run["sensitivity"]
    paths = [sensitivity_figure(scan[scan["round"] == scan["round"].min()], figs / "sensitivity.png"),
             rounds_figure(run, figs / "rounds.png"), layers_figure(run, figs / "kept_per_layer.png")]
    return paths


def sensitivity_figure(scan: pd.DataFrame, path: Path) -> Path:
    """Validation accuracy against sensitivity, one curve per layer pruned alone."""
    fig, (ax, ax2) = figure(10, 4, ncols=2)
    for layer, rows in scan.groupby("layer", sort=False):
        ax.plot(rows["sensitivity"], 100 * rows["val_accuracy"], marker=".", label=f"layer {layer}")
        ax2.plot(rows["sensitivity"], 100 * rows["kept_fraction"], marker=".", label=f"layer {layer}")
    ax.set_xlabel("sensitivity s (threshold = s * std)")
    ax.set_ylabel("validation accuracy (%), that layer pruned alone")
    ax2.set_xlabel("sensitivity s")
    ax2.set_ylabel("weights kept in the layer (%)")
    for a in (ax, ax2):
        a.legend(fontsize=8)
    return finish(fig, path)


def rounds_figure(run: dict, path: Path) -> Path:
    rounds, base = run["rounds"], run["base"]
    fig, (ax, ax2) = figure(10, 4, ncols=2)
    ok, undone = rounds[rounds["accepted"]], rounds[~rounds["accepted"]]
    ax.plot([0, *ok["round"]], [1.0, *ok["compression"]], marker="o", label="accepted rounds")
    ax.scatter(undone["round"], undone["compression"], marker="x", color="tab:red",
               label="rejected rounds (undone: accuracy below accept_drop)")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel("round")
    ax.set_ylabel("compression (dense / nonzero weights)")
    for column, start, marker, label in [("val_accuracy_pruned", "val_accuracy", "x", "validation, after pruning"),
                                         ("val_accuracy", "val_accuracy", "o", "validation, after fine-tuning"),
                                         ("test_accuracy", "test_accuracy", "s", "test, after fine-tuning")]:
        ax2.plot([0, *rounds["round"]], [100 * base[start], *100 * rounds[column]], marker=marker, label=label)
    ax2.set_xlabel("round")
    ax2.set_ylabel("accuracy (%)")
    ax2.legend(fontsize=8)
    return finish(fig, path)


def layers_figure(run: dict, path: Path) -> Path:
    rounds, base = run["rounds"], run["base"]
    fig, ax = figure(6.4, 4)
    for layer in base["layers"]:
        kept = [1.0, *(rounds[f"kept_{layer}"] / base["weights"][layer])]
        ax.plot(range(len(kept)), [100 * k for k in kept], marker="o", label=f"layer {layer}")
    ax.set_yscale("log")
    ax.set_xlabel("round")
    ax.set_ylabel("weights kept (%)")
    ax.legend(fontsize=8)
    return finish(fig, path)
