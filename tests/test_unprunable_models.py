"""A model the project cannot prune is refused in one sentence naming the layer and the reason,
never a traceback: a channel shuffle Torch-Pruning cannot map, an auxiliary head the forward pass
in eval mode never reaches."""
import pytest
import torch
import torchvision
from torch import nn

from evoprune.errors import EvopruneError
from evoprune.pruning import PrunableStructure


class AuxHead(nn.Module):
    """A head used in training only, as GoogLeNet's and Inception's auxiliary classifiers."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU())
        self.aux = nn.Conv2d(8, 10, 1)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        features = self.body(x)
        logits = self.head(features.mean((2, 3)))
        if self.training:
            return logits, self.aux(features).mean((2, 3))
        return logits


def test_a_channel_shuffle_is_refused_in_one_sentence():
    model = torchvision.models.shufflenet_v2_x0_5(num_classes=10).eval()
    with pytest.raises(EvopruneError, match=r"^Torch-Pruning cannot trace which layers of this model are coupled "
                                            r"\(ZeroDivisionError: integer division or modulo by zero, in .*\), and "
                                            r"filter pruning needs that"):
        PrunableStructure(model, (3, 32, 32))


def test_a_head_the_forward_pass_never_reaches_is_named_and_can_be_ignored():
    model = AuxHead().eval()
    with pytest.raises(EvopruneError, match=r"^convolution 'aux' is not reached by the model's forward pass in eval "
                                            r"mode \(an auxiliary head used in training only\?\)"):
        PrunableStructure(model, (1, 12, 12))
    structure = PrunableStructure(model, (1, 12, 12), ignored=("aux",))
    assert [layer.name for layer in structure.layers] == ["body.0", "body.2"] and structure.reasons["aux"]


def test_torchvision_models_with_auxiliary_heads_are_built_without_them():
    from evoprune.models import build_model

    model = build_model("torchvision:googlenet", num_classes=10).train()
    assert isinstance(model(torch.zeros(2, 3, 64, 64)), torch.Tensor)  # logits alone, in training mode too
    assert len(PrunableStructure(model.eval(), (3, 64, 64)).layers) > 0
