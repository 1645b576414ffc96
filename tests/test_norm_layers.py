"""Layers beyond Conv2d / Linear / BatchNorm (GroupNorm, InstanceNorm, LayerNorm, PReLU) are
sliced as Torch-Pruning's pruners slice them; a layer whose channels cannot go one at a time
(GroupNorm with several channels per group) leaves its decision out, with the reason."""
import numpy as np
import torch
from torch import nn

from evoprune.data.splits import TensorSplit
from evoprune.fitness import FilterEvaluator
from evoprune.methods.emofp import FilterSearchConfig, run_filter_search
from evoprune.models import load_pruned, save_pruned
from evoprune.pruning import PrunableStructure, RatioSelection, kept_tensors, physically_prune


class NormNet(nn.Module):
    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.conv1, self.norm1, self.act1 = nn.Conv2d(in_channels, 8, 3, padding=1), nn.GroupNorm(1, 8), nn.PReLU(8)
        self.conv2, self.norm2, self.act2 = nn.Conv2d(8, 8, 3, padding=1), nn.GroupNorm(8, 8), nn.PReLU()
        self.conv3, self.norm3 = nn.Conv2d(8, 16, 3, padding=1), nn.GroupNorm(4, 16)
        self.conv4 = nn.Conv2d(16, 8, 3, padding=1)
        self.norm4 = nn.InstanceNorm2d(8, affine=True, track_running_stats=True)
        self.pool, self.norm5, self.fc = nn.AdaptiveMaxPool2d(2), nn.LayerNorm(32), nn.Linear(32, 10)

    def forward(self, x):
        x = self.act1(self.norm1(self.conv1(x)))
        x = self.act2(self.norm2(self.conv2(x)))
        x = torch.relu(self.norm3(self.conv3(x)))
        x = torch.relu(self.norm4(self.conv4(x)))
        return self.fc(self.norm5(self.pool(x).flatten(1)))


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = NormNet()
    with torch.no_grad():  # norms and activations away from their identity start
        for m in model.modules():
            if isinstance(m, (nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm, nn.PReLU)):
                for name, p in m.named_parameters():
                    p.uniform_(-0.2, 0.2) if name == "bias" else p.uniform_(0.2, 1.5)
        model.norm4.running_mean.uniform_(-0.5, 0.5)
        model.norm4.running_var.uniform_(0.5, 2.0)
        model.fc.weight.mul_(5.0)
    return model.eval()


def test_grouped_norm_leaves_its_decision_out_with_the_reason():
    structure = PrunableStructure(_model(), (3, 16, 16))
    assert [layer.name for layer in structure.layers] == ["conv1", "conv2", "conv4"]
    assert structure.ignored == ["conv3"]
    assert "GroupNorm 'norm3'" in structure.reasons["conv3"] and "4 groups" in structure.reasons["conv3"]


def test_sliced_candidate_is_the_pruned_network_and_reloads(tmp_path):
    model = _model()
    structure = PrunableStructure(model, (3, 16, 16))
    keep = kept_tensors(RatioSelection("l1").bind(model, structure).keep(np.full(len(structure.layers), 0.5)))
    pruned = physically_prune(model, structure, keep)
    assert pruned.norm1.weight.shape == (4,) and pruned.act1.weight.shape == (4,)
    assert pruned.norm2.num_groups == pruned.norm2.num_channels == 4
    assert pruned.norm4.running_mean.shape == (4,) and pruned.norm5.normalized_shape == (16,)
    assert pruned.act2.weight.shape == (1,)

    x = torch.randn(64, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = pruned(x)
    labels = logits.argmax(1)
    assert labels.unique().numel() > 2  # the check below could not pass by chance
    evaluator = FilterEvaluator(model, structure, TensorSplit(x, labels), workers=1)
    assert evaluator.evaluate(keep).accuracy == 1.0

    reloaded = load_pruned(save_pruned(tmp_path / "m.pt", pruned, None), model=NormNet())
    with torch.no_grad():
        assert torch.equal(reloaded(x), logits)


def test_a_run_names_the_layers_it_leaves_out_and_prunes_the_rest(tmp_path, mini, capsys):
    torch.manual_seed(0)
    cfg = FilterSearchConfig(cache_dir=None, epochs=1, train_given_model=True, pop_size=6, generations=2, select=1,
                             finetune_epochs=1, max_drop=0.3, optimizer="adam", lr=0.003)
    result = run_filter_search(cfg, tmp_path / "r", model=NormNet(in_channels=1), data=mini)
    said = "left out of the search: conv3 (coupled to GroupNorm 'norm3'"
    assert said in capsys.readouterr().err and said in (tmp_path / "r" / "warnings.txt").read_text()
    assert result.base["layers"] == ["conv1", "conv2", "conv4"]
    for _, row in result.finetuned.iterrows():
        reloaded = load_pruned(tmp_path / "r" / row["model_file"], model=NormNet(in_channels=1))
        assert reloaded.conv3.out_channels == 16 and reloaded.conv1.out_channels <= 8
