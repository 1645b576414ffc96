"""Settings of a clustering filter-pruning run."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import FilterFineTuneConfig, fractions, option


@dataclass
class ClusterConfig(FilterFineTuneConfig):
    """Clustering filter selection: one pruned and fine-tuned model per pruning ratio."""

    ratios: tuple[float, ...] = option((0.5, 0.75, 0.9), "comma-separated fractions of filters removed, the same in "
                                       "every layer, one pruned model per value, each in [0, 1)",
                                       fractions("of filters removed", "0.5,0.75,0.9", zero=True), kind=str)
