"""Settings of a clustering filter-pruning run."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import FilterFineTuneConfig, option
from ...errors import EvopruneError


def _ratios(name, value):
    """Comma-separated fractions (or a sequence of numbers) -> a tuple of floats, each in [0, 1)."""
    parts = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
    if not isinstance(parts, (list, tuple)) or not parts:
        raise EvopruneError(f"{name} must be comma-separated fractions of filters removed, e.g. 0.5,0.75,0.9, "
                            f"got {value!r}")
    ratios = []
    for part in parts:
        try:
            r = float(part) if not isinstance(part, bool) else None
        except (TypeError, ValueError):
            r = None
        if r is None or not 0 <= r < 1:
            raise EvopruneError(f"{name} value {part!r} is not a fraction of filters removed in [0, 1)")
        if r in ratios:  # the same pruned model twice
            raise EvopruneError(f"{name} holds {part!r} twice; each ratio is one pruned model")
        ratios.append(r)
    return tuple(ratios)


@dataclass
class ClusterConfig(FilterFineTuneConfig):
    """Clustering filter selection: one pruned and fine-tuned model per pruning ratio."""

    ratios: tuple[float, ...] = option((0.5, 0.75, 0.9), "comma-separated fractions of filters removed, the same in "
                                       "every layer, one pruned model per value, each in [0, 1)", _ratios, kind=str)
