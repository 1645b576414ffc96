"""DENNC --halve-step: after a rejected round, the next search steps at most halfway to it."""
import json

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


def within_halved_steps(rounds: pd.DataFrame) -> list[bool]:
    """For each round after a rejected one: whether its search stayed within the geometric midpoint
    between its start (the last accepted compression, or 1) and the rejected search's compression
    (before fine-tuning, which may recover connections)."""
    start, cap, checks = 1.0, None, []
    for _, r in rounds.iterrows():
        if cap is not None:
            checks.append(r["searched_compression"] <= cap + 1e-9)
        start, cap = (r["compression"], None) if r["accepted"] else (start, np.sqrt(start * r["searched_compression"]))
    return checks


def run(tmp_path, halve: bool, recovery: float) -> tuple[pd.DataFrame, int]:
    """The rounds table of a small run, and its number of prunable weights."""
    torch.manual_seed(0)
    cfg = WeightPruningConfig(epochs=1, rounds=3, pop_size=6, generations=2, finetune_epochs=1, sweep_steps=3,
                              max_drop=0.5, accept_drop=0.0, patience=3, search_val_size=300, halve_step=halve,
                              recovery_rate=recovery, cache_dir=str(tmp_path / "c"))
    out = tmp_path / f"halve{halve}-{recovery}"
    run_dennc(cfg, out)
    return pd.read_csv(out / "rounds.csv"), json.loads((out / "base.json").read_text())["prunable_weights"]


def test_after_a_rejected_round_the_next_search_steps_at_most_halfway(tmp_path):
    assert not all(within_halved_steps(run(tmp_path, False, 0.0)[0]))  # halving max_drop alone steps further
    checks = within_halved_steps(run(tmp_path, True, 0.0)[0])
    assert checks and all(checks)


def test_halfway_is_measured_from_the_searched_network_not_the_recovered_one(tmp_path):
    # fine-tuning recovers half the removed connections: the rejected network holds far more weights
    # than its search kept, and a midpoint taken from it would leave the next search little room or none
    rounds, dense = run(tmp_path, True, 0.5)
    kept, searched = dense / rounds["compression"], dense / rounds["searched_compression"]
    assert (kept > searched).all()
    start, checked = dense, 0
    for i in range(len(rounds)):
        if i and not rounds["accepted"][i - 1]:
            assert rounds["min_kept"][i] == pytest.approx(np.sqrt(start * searched[i - 1]), abs=1.5)
            checked += 1
        if rounds["accepted"][i]:
            start = kept[i]
    assert checked


def test_halve_step_must_be_true_or_false():
    with pytest.raises(EvopruneError, match="halve_step"):
        WeightPruningConfig(halve_step="yes").validate()


def test_min_kept_outside_the_prunable_weights_is_refused(trained_lenet300, mini):
    for bad in (-1, 266201):
        with pytest.raises(EvopruneError, match=f"min_kept {bad} must be between 0 and the 266200"):
            LayerwiseWeightPruningProblem(trained_lenet300, mini.val.subset(50), xu=2.0, min_kept=bad)
