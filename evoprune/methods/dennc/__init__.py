"""DENNC -- layer-wise weight pruning by differential evolution (Wu et al., Sensors 21(3):880,
2021), and the sensitivity scan it starts from."""
from ..base import Method, register
from .config import SensitivityConfig, WeightPruningConfig
from .pipeline import make_de, run_dennc, run_sensitivity
from .report import sensitivity_summary, weights_summary, write_figures

register(Method(
    name="dennc", command="weights", config=WeightPruningConfig, run=run_dennc, summary=weights_summary,
    help="DENNC: layer-wise weight pruning, per-layer sensitivities searched by differential evolution, in rounds "
         "with fine-tuning",
    description="Prune conv and linear weights by magnitude, with per-layer thresholds s * std chosen by pymoo's DE "
                "(objective: weights kept; constraint: accuracy drop), in rounds of search, pruning and masked "
                "fine-tuning with recovery; write a run directory with a sparse model file."))
register(Method(
    name="sensitivity", command="sensitivity", config=SensitivityConfig, run=run_sensitivity,
    summary=sensitivity_summary,
    help="prune each layer alone at a sweep of sensitivities and record validation accuracy",
    description="Sensitivity analysis: each conv and linear layer pruned alone at thresholds s * std for s from "
                "--s-min to --s-max."))

__all__ = ["SensitivityConfig", "WeightPruningConfig", "make_de", "run_dennc", "run_sensitivity",
           "sensitivity_summary", "weights_summary", "write_figures"]
