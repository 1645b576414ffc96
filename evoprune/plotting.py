"""The figure helpers every report uses. Figures are made without pyplot, so writing them needs no
display and leaves the caller's matplotlib backend (a notebook's inline plots) alone."""
from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from .io import save_figure

__all__ = ["finish", "figure"]


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
