"""GA channel selection -- layer by layer, least sensitive first, a binary GA chooses the channels
each layer keeps (Hu et al., arXiv 1805.11394, 2018)."""
from ..base import Method, register
from .config import ChannelSelectionConfig
from .pipeline import default_ga, layer_sensitivity, run_channels
from .report import summary, write_figures

register(Method(
    name="channels", command="channels", config=ChannelSelectionConfig, run=run_channels, summary=summary,
    help="GA channel selection (Hu et al.): layer by layer, least sensitive first, a binary GA picks the channels "
         "each layer keeps; distillation fine-tuning at the end",
    description="Order the conv layers by sensitivity, then for each: search a binary mask over its channels with "
                "pymoo's GA (objective: channels kept; constraint: accuracy drop; two-step screened fitness), prune "
                "it physically and fine-tune briefly; finally fine-tune by distillation from the base model and "
                "write a run directory."))

__all__ = ["ChannelSelectionConfig", "default_ga", "layer_sensitivity", "run_channels", "summary",
           "write_figures"]
