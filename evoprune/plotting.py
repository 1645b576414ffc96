"""The figure helpers every report uses. Figures are made without pyplot, so writing them needs no
display and leaves the caller's matplotlib backend (a notebook's inline plots) alone."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .io import save_figure

__all__ = ["filters_figure", "finish", "figure"]


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
