import copy

import pandas as pd
import pytest
import torch

from evoprune.errors import EvopruneError
from evoprune.methods.dennc import WeightPruningConfig, run_dennc
from evoprune.pruning.masks import MaskedTraining, current_masks, kept_counts, prunable_weights
from evoprune.train import TrainConfig, fit


def test_masks_tighten_along_the_schedule_to_the_targets_keeping_the_largest_weights(trained_lenet300, mini):
    model = copy.deepcopy(trained_lenet300)
    weights = prunable_weights(model)
    start = kept_counts(current_masks(weights))
    targets = {n: k // 20 for n, k in start.items()}
    seen = []
    with MaskedTraining(weights, current_masks(weights), steps_per_epoch=8, epochs=4, targets=targets,
                        ramp=0.5) as enforced:
        def after_step(step):
            enforced.after_step(step)
            seen.append(kept_counts(current_masks(weights)))
        fit(model, mini.train.subset(1024), TrainConfig(epochs=4, batch_size=128, lr=0.05), after_step=after_step)
    # 32 steps, ramp over the first 16: counts shrink step by step, never grow, and end at the targets
    assert seen[15] == targets and seen[-1] == targets
    for name in weights:
        counts = [s[name] for s in seen]
        assert all(a >= b for a, b in zip(counts, counts[1:]))
        assert start[name] > counts[7] > targets[name]  # halfway through the ramp: between the two


def test_tightening_keeps_the_largest_live_weights_and_never_revives_a_pruned_one():
    weight = torch.nn.Parameter(torch.tensor([0.0, 5.0, -4.0, 3.0, 0.0, -2.0, 1.0, 0.5]))
    mask = weight.detach() != 0
    enforced = MaskedTraining({"w": weight}, {"w": mask}, targets={"w": 2}, steps_per_epoch=1, epochs=1, ramp=1.0)
    with enforced:
        enforced.after_step(1)
    assert weight.detach().tolist() == [0.0, 5.0, -4.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_gradual_rounds_end_at_the_searched_compression(tmp_path):
    torch.manual_seed(0)
    cfg = WeightPruningConfig(epochs=1, rounds=2, pop_size=6, generations=2, finetune_epochs=2, sweep_steps=3,
                              max_drop=0.05, accept_drop=0.5, search_val_size=300, prune_schedule="gradual",
                              cache_dir=str(tmp_path / "c"))
    result = run_dennc(cfg, tmp_path / "gradual")
    rounds = pd.read_csv(tmp_path / "gradual" / "rounds.csv")
    assert len(rounds) == 2 and rounds["compression"].is_monotonic_increasing
    assert result.result["compression"] == pytest.approx(rounds["compression"].iloc[-1])
    # round 1 kept exactly as many connections per layer as its searched thresholds keep of the base
    base = torch.load(tmp_path / "gradual" / "base_model.pt", weights_only=True)["state_dict"]
    for layer in result.layers["layer"]:
        searched = int((base[f"{layer}.weight"].abs() > rounds[f"threshold_{layer}"][0]).sum())
        assert rounds[f"kept_{layer}"][0] == searched, layer
    assert result.result["pruned_val_accuracy"] > 0.5


@pytest.mark.parametrize("ramp", [0.0, 1.5])
def test_a_ramp_outside_zero_to_one_is_refused(ramp):
    with pytest.raises(EvopruneError, match=f"prune_ramp {ramp:g} must be in"):
        WeightPruningConfig(prune_schedule="gradual", prune_ramp=ramp).validate()
