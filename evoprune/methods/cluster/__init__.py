"""Clustering filter selection (Li, Zhu, Sun, ICME Workshops 2019): learned filter features,
k-means per layer, keep the filter nearest each centroid, fine-tune."""
from ..base import Method, register
from .config import ClusterConfig
from .pipeline import base_metrics, run_cluster
from .report import summary, write_figures

register(Method(
    name="cluster", command="cluster", config=ClusterConfig, run=run_cluster, summary=summary,
    help="clustering filter selection: per layer, k-means of learned filter features keeps the filter nearest each "
         "centroid; one fine-tuned model per pruning ratio",
    description="Learn a feature vector per filter (a small autoencoder per layer), cluster each layer's filters "
                "with k-means into as many clusters as filters kept, keep the filter nearest each centroid, remove "
                "the rest, fine-tune; one model per --ratios value; write a run directory."))

__all__ = ["ClusterConfig", "base_metrics", "run_cluster", "summary", "write_figures"]
