"""Tables and figures of a filter-pruning run directory."""
from __future__ import annotations

from pathlib import Path

from ...plotting import figure, filters_figure, finish
from ...problems.measures import MEASURES, column
from ..base import read_run_files, table_text
from .config import budget_setting

RUN_FILES = ("config.json", "base.json", "pareto.csv", "finetuned.csv", "history.csv")


def read_run(run_dir: str | Path) -> dict:
    return read_run_files(run_dir, RUN_FILES, "filter-pruning")


def summary(run_dir: str | Path) -> str:
    run = read_run(run_dir)
    s, base, ft = run["config"]["settings"], run["base"], run["finetuned"]
    h = run["history"].iloc[-1]
    cols = ["filters_kept", "filters_pruned_pct", "test_accuracy_before", "test_accuracy_after", "params",
            "params_pruned_pct", "flops", "latency_ms_per_batch256", "model_file"]
    table = ft[cols].rename(columns={"filters_pruned_pct": "filters_pruned_%", "params_pruned_pct": "params_pruned_%",
                                     "test_accuracy_before": "test_acc_before", "test_accuracy_after": "test_acc_after",
                                     "latency_ms_per_batch256": "ms/batch256"})
    warnings = Path(run_dir) / "warnings.txt"
    return "\n".join([
        *[f"warning: {line}" for line in (warnings.read_text().splitlines() if warnings.is_file() else [])],
        f"run {run_dir}: {s['model']} on {s['dataset']}, seed {s['seed']}",
        f"base: {sum(base['filters'])} filters {base['filters']}, {base['params']:,} params, {base['flops']:,} FLOPs, "
        f"test accuracy {base['test_accuracy']:.4f}, {base['latency_ms_per_batch256']:.2f} ms/batch256",
        f"search: pop {s['pop_size']} x {int(h['generation'])} generations, {int(h['evaluations'])} evaluations, "
        f"{int(h['distinct_networks'])} distinct networks, final hypervolume {h['hypervolume']:.4f}",
        f"front: {len(run['pareto'])} non-dominated feasible solutions (accuracy drop <= {s['max_drop']:g})",
        "fine-tuned models (test set):",
        table_text(table),
    ])


def write_figures(run_dir: str | Path) -> list[Path]:
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    figs = run_dir / "figures"
    return [tradeoff_figure(run, figs / "tradeoff.png"), hypervolume_figure(run, figs / "hypervolume.png"),
            filters_figure(run, figs / "filters_per_layer.png")]


def tradeoff_figure(run: dict, path: Path) -> Path:
    """Validation error along the front against the run's first size objective (filters, FLOPs,
    ...), the selected models before and after fine-tuning, and the size's budget if it had one."""
    base, pareto, ft, settings = run["base"], run["pareto"], run["finetuned"], run["config"]["settings"]
    size = next(o for o in settings.get("objectives", ("filters", "error")) if o != "error")
    pruned_pct = f"{size}_pruned_pct"
    if pruned_pct not in ft:  # a size fine-tuned tables do not report (latency): shown by filters
        size, pruned_pct = "filters", "filters_pruned_pct"
    x = column(size)
    fig, ax = figure()
    ax.step(pareto[x], 100 * pareto["val_error"], where="post", color="tab:blue", alpha=0.5)
    ax.scatter(pareto[x], 100 * pareto["val_error"], s=18, color="tab:blue",
               label="Pareto front (validation, before fine-tuning)")
    kept = 1 - ft[pruned_pct] / 100
    ax.scatter(kept, 100 * (1 - ft["test_accuracy_before"]), marker="x", color="tab:red",
               label="selected, test, before fine-tuning")
    ax.scatter(kept, 100 * (1 - ft["test_accuracy_after"]), marker="o", color="tab:green", s=40,
               label="selected, test, after fine-tuning")
    ax.scatter([1.0], [100 * (1 - base["test_accuracy"])], marker="*", s=120, color="black", label="base model (test)")
    if settings.get(budget_setting(size)) is not None:
        ax.axvline(settings[budget_setting(size)], color="grey", linestyle="--", label=f"{size} budget")
    ax.set_xlabel(f"fraction of {MEASURES.get(size).help}")
    ax.set_ylabel("error (%)")
    ax.set_title(f"{settings['model']} on {settings['dataset']}")
    ax.legend(fontsize=8)
    return finish(fig, path)


def hypervolume_figure(run: dict, path: Path) -> Path:
    h = run["history"]
    fig, ax = figure(height=3.6)
    ax.plot(h["generation"], h["hypervolume"], marker=".")
    ax.set_xlabel("generation")
    ax.set_ylabel("hypervolume of the feasible front\n(reference point (1, 1))")
    return finish(fig, path)
