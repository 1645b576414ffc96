"""The figure helpers every report uses. Figures are made without pyplot, so writing them needs no
display and leaves the caller's matplotlib backend (a notebook's inline plots) alone."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .io import save_figure

__all__ = ["accuracy_figure", "filters_figure", "finish", "figure"]


def figure(width: float = 6.4, height: float = 4.4, ncols: int = 1):
    """A new figure with ``ncols`` axes side by side."""
    fig = Figure(figsize=(width, height))
    return fig, fig.subplots(1, ncols)


def finish(fig: Figure, path: Path, grid: bool = True) -> Path:
    """Grid every axis and write the figure atomically to ``path``."""
    if grid:
        for ax in fig.axes:
            ax.grid(alpha=0.3, which="both")
    return save_figure(path, fig)


def filters_figure(run: dict, path: Path) -> Path:
    """Filters kept per layer by each fine-tuned model of a filter-pruning run (``run["base"]``
    names the layers and their filters, ``run["finetuned"]`` has a ``kept_<layer>`` column each)."""
    base, ft = run["base"], run["finetuned"]
    layers = base["layers"]
    width = 0.8 / (len(ft) + 1)
    pos = np.arange(len(layers))
    fig, ax = figure(max(6.4, 1.2 * len(layers) + 3), 4)
    ax.bar(pos, base["filters"], width, color="lightgrey", label="base")
    for i, (_, row) in enumerate(ft.iterrows()):
        ax.bar(pos + (i + 1) * width, [row[f"kept_{n}"] for n in layers], width,
               label=f"model {i} ({row['filters_pruned_pct']:.0f}% pruned)")
    ax.set_xticks(pos + width * len(ft) / 2, [f"layer {n}" for n in layers])
    ax.set_ylabel("filters kept")
    ax.legend(fontsize=8)
    return finish(fig, path, grid=False)


def accuracy_figure(run: dict, path: Path, pruned: str, title: str) -> Path:
    """Test accuracy before and after fine-tuning of each model of ``run["results"]`` against its
    ``pruned`` column (a percentage pruned), with the base model at 0."""
    base, results = run["base"], run["results"].sort_values(pruned)
    fig, ax = figure()
    ax.plot(results[pruned], 100 * results["test_accuracy_before"], marker="x", color="tab:red",
            label="before fine-tuning")
    ax.plot(results[pruned], 100 * results["test_accuracy_after"], marker="o", color="tab:green",
            label="after fine-tuning")
    ax.scatter([0.0], [100 * base["test_accuracy"]], marker="*", s=120, color="black", label="base model")
    ax.set_xlabel(f"{pruned.removesuffix('_pruned_pct')} pruned (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return finish(fig, path)
