import numpy as np
import pandas as pd
import pytest

from evoprune.errors import EvopruneError
from evoprune.fitness.sensitivity import check_sweep, sensitivity_scan, upper_bounds
from evoprune.train import evaluate


@pytest.fixture(scope="module")
def scan(trained_lenet300, mini):
    return sensitivity_scan(trained_lenet300, mini.val, check_sweep(0.0, 2.0, 5))


def test_each_layer_is_pruned_alone_over_the_whole_sweep(scan, trained_lenet300, mini):
    assert list(scan["layer"].unique()) == ["1", "3", "5"]
    assert scan.groupby("layer").size().tolist() == [5, 5, 5]
    base = evaluate(trained_lenet300, mini.val)["accuracy"]
    at_zero = scan[scan["sensitivity"] == 0]
    assert (at_zero["kept_fraction"] == 1).all() and (at_zero["val_accuracy"] == base).all()
    for _, rows in scan.groupby("layer"):
        assert rows["kept_fraction"].is_monotonic_decreasing
    assert scan["val_accuracy"].min() < base - 0.05  # s = 2 on some layer does real damage
    first = scan[(scan["layer"] == "1") & (scan["sensitivity"] == 1.0)].iloc[0]
    w = trained_lenet300[1].weight.detach()
    assert first["threshold"] == pytest.approx(w.std(correction=0).item())
    assert first["kept_fraction"] == pytest.approx((w.abs() > first["threshold"]).float().mean().item())


def test_scan_leaves_the_model_untouched(scan, trained_lenet300):
    assert all(bool((p != 0).all()) for p in trained_lenet300.parameters())


def test_upper_bound_is_the_first_sensitivity_past_the_allowed_drop():
    scan = pd.DataFrame({"layer": ["a"] * 4 + ["b"] * 4, "sensitivity": [0, 1, 2, 3] * 2,
                         "accuracy_drop": [0, 0.01, 0.04, 0.2, 0, 0.001, 0.002, 0.003]})
    assert upper_bounds(scan, 0.02) == {"a": 2.0, "b": 3.0}


@pytest.mark.parametrize("s_min, s_max, message", [
    (-0.5, 2.0, "sensitivity bounds must satisfy 0 <= s_min < s_max, got s_min=-0.5, s_max=2"),
    (2.0, 1.0, "sensitivity bounds must satisfy 0 <= s_min < s_max, got s_min=2, s_max=1"),
    (1.0, 1.0, "sensitivity bounds must satisfy 0 <= s_min < s_max, got s_min=1, s_max=1"),
])
def test_negative_or_inverted_bounds_are_rejected(s_min, s_max, message):
    with pytest.raises(EvopruneError) as e:
        check_sweep(s_min, s_max, 10)
    assert str(e.value) == message


def test_sweep_is_evenly_spaced_and_inclusive():
    assert np.allclose(check_sweep(0.5, 2.5, 5), [0.5, 1.0, 1.5, 2.0, 2.5])
