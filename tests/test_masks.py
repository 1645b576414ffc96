import math

import pytest
import torch

from evoprune.errors import EvopruneError
from evoprune.models import build_model
from evoprune.pruning.masks import (MaskedTraining, alive_std, current_masks, magnitude_mask, prunable_weights,
                                    recover)
from evoprune.train import TrainConfig, fit


def test_threshold_is_s_times_std_of_the_live_weights_on_a_known_tensor():
    w = torch.cat([torch.arange(-50.0, 0.0), torch.zeros(7), torch.arange(1.0, 51.0)])  # +-1..50 and 7 zeros
    std = math.sqrt(sum(k * k for k in range(1, 51)) / 50)  # the zeros are already pruned: not counted
    assert alive_std(w) == pytest.approx(std)
    for s in (0.0, 0.5, 1.0, 1.5):
        kept = 2 * sum(1 for k in range(1, 51) if k > s * std)
        assert int(magnitude_mask(w, s).sum()) == kept
    assert int(magnitude_mask(w, 0.0).sum()) == 100  # s = 0 keeps every live weight, never a zero


def test_kept_fraction_of_gaussian_weights_follows_the_normal_tail():
    w = torch.randn(400_000, generator=torch.Generator().manual_seed(0))
    for s, tail in [(1.0, 0.3173), (2.0, 0.0455)]:
        assert magnitude_mask(w, s).float().mean().item() == pytest.approx(tail, abs=0.003)


def test_masked_weights_stay_exactly_zero_through_fine_tuning_with_momentum_and_decay(mini):
    torch.manual_seed(0)
    model = build_model("lenet300")
    weights = prunable_weights(model)
    gen = torch.Generator().manual_seed(0)
    masks = {n: torch.rand(w.shape, generator=gen) > 0.8 for n, w in weights.items()}
    before = {n: w.detach().clone() for n, w in weights.items()}
    biases = [m.bias.detach().clone() for m in model if isinstance(m, torch.nn.Linear)]
    with MaskedTraining(weights, masks) as enforced:
        fit(model, mini.train.subset(1024), TrainConfig(epochs=2, lr=0.05, weight_decay=5e-4), after_step=enforced.after_step)
    for n, w in weights.items():
        assert torch.all(w[~masks[n]] == 0), n
        assert not torch.equal(w[masks[n]], before[n][masks[n]] * 1), n  # the kept weights did train
        assert torch.equal(current_masks(weights)[n], masks[n] & (w != 0))
    after_biases = [m.bias for m in model if isinstance(m, torch.nn.Linear)]
    assert all(not torch.equal(a, b) for a, b in zip(after_biases, biases))  # biases are not masked


def test_recovery_re_enables_the_requested_fraction_of_removed_connections():
    weight = torch.ones(100, 50)
    mask = torch.rand(100, 50, generator=torch.Generator().manual_seed(1)) > 0.9
    weight[~mask] = 0
    removed = int((~mask).sum())
    old = mask.clone()
    n = recover(weight, mask, 0.1, torch.Generator().manual_seed(0))
    assert n == round(0.1 * removed) == int(mask.sum() - old.sum())
    revived = mask & ~old
    assert torch.all(weight[revived] == 0)  # restart at zero, free to grow during fine-tuning
    n2 = recover(weight, mask, 0.5, torch.Generator().manual_seed(0), init_std=0.01)
    assert n2 == round(0.5 * (removed - n))
    assert torch.all(weight[mask & ~old & ~revived] != 0)  # restart at a small random value


def test_epoch_schedule_recovers_before_every_epoch_but_not_after_the_last():
    weight = torch.nn.Parameter(torch.zeros(1000))
    mask = torch.zeros(1000, dtype=torch.bool)
    enforced = MaskedTraining({"w": weight}, {"w": mask}, rate=0.1, schedule="epoch", steps_per_epoch=5, epochs=3)
    with enforced:
        for step in range(1, 16):
            enforced.after_step(step)
    assert enforced.recovered == 100 + 90 + 81  # 10 % of what is still removed, three times


@pytest.mark.parametrize("kwargs, message", [
    ({"rate": 1.0}, "recovery rate 1 is outside [0, 1)"),
    ({"rate": -0.1}, "recovery rate -0.1 is outside [0, 1)"),
    ({"schedule": "daily"}, "recovery schedule 'daily' is unknown; known: once, epoch"),
])
def test_bad_recovery_settings_are_one_sentence(kwargs, message):
    with pytest.raises(EvopruneError) as e:
        MaskedTraining({}, {}, **kwargs)
    assert str(e.value).startswith(message)


def test_unknown_layer_names_the_prunable_ones():
    with pytest.raises(EvopruneError) as e:
        prunable_weights(build_model("lenet5"), ["0", "4"])
    assert str(e.value) == "layer '4' does not exist or is not a convolution or linear layer; prunable layers: 0, 2, 5, 7"
