"""DENNC --max-step: a round's search may raise compression by at most that factor."""
import numpy as np
import pandas as pd
import pytest
import torch

from evoprune.errors import EvopruneError
from evoprune.methods.dennc import WeightPruningConfig, run_dennc
from evoprune.problems.weight_pruning import LayerwiseWeightPruningProblem


def test_networks_pruned_past_min_kept_break_the_second_constraint(trained_lenet300, mini):
    val = mini.val.subset(300)
    free = LayerwiseWeightPruningProblem(trained_lenet300, val, xu=2.0, max_drop=1.0)
    dense = int(free.sizes.sum())
    capped = LayerwiseWeightPruningProblem(trained_lenet300, val, xu=2.0, max_drop=1.0, min_kept=dense // 2)
    X = np.array([[0.0, 0.0, 0.0], [0.1, 0.1, 0.1], [2.0, 2.0, 2.0]])
    out_free, out_capped = free.evaluate(X, return_as_dictionary=True), capped.evaluate(X, return_as_dictionary=True)
    assert out_free["G"].shape == (3, 1) and out_capped["G"].shape == (3, 2)
    np.testing.assert_allclose(out_capped["G"][:, 0], out_free["G"][:, 0])  # the accuracy bound as before
    kept = out_capped["F"][:, 0] * dense
    assert ((out_capped["G"][:, 1] <= 0) == (kept >= dense // 2)).all()
    assert out_capped["G"][0, 1] <= 0 < out_capped["G"][2, 1]  # nothing pruned: within; most pruned: past


def test_a_capped_round_ends_within_its_step(tmp_path):
    compressions = {}
    for step in (1.5, None):
        torch.manual_seed(0)
        cfg = WeightPruningConfig(epochs=1, rounds=2, pop_size=6, generations=2, finetune_epochs=1, sweep_steps=3,
                                  max_drop=0.2, accept_drop=0.5, search_val_size=300, max_step=step,
                                  cache_dir=str(tmp_path / "c"))
        run_dennc(cfg, tmp_path / f"step{step}")
        compressions[step] = pd.read_csv(tmp_path / f"step{step}" / "rounds.csv")["compression"]
    capped = compressions[1.5]
    steps = capped / capped.shift(1, fill_value=1.0)  # every round accepted (accept_drop 0.5)
    assert len(capped) == 2 and (steps <= 1.5 + 1e-9).all() and (steps > 1.0).all()
    assert compressions[None][0] > 1.5  # the same search without the cap steps further


@pytest.mark.parametrize("value", [0.5, 0.99])
def test_a_step_below_one_is_refused(value):
    with pytest.raises(EvopruneError, match="max_step"):
        WeightPruningConfig(max_step=value).validate()
