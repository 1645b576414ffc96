"""Matplotlib set up for files (no display needed) and the helpers every report uses."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: runs on machines without a display
import matplotlib.pyplot as plt  # noqa: E402

from .io import save_figure  # noqa: E402

__all__ = ["plt", "finish", "figure"]


def figure(width: float = 6.4, height: float = 4.4, ncols: int = 1):
    """A new figure with ``ncols`` axes side by side."""
    return plt.subplots(1, ncols, figsize=(width, height))


def finish(fig, path: Path, grid: bool = True) -> Path:
    """Grid every axis, write the figure atomically to ``path`` and free it."""
    if grid:
        for ax in fig.axes:
            ax.grid(alpha=0.3, which="both")
    save_figure(path, fig)
    plt.close(fig)
    return path
