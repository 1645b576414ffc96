"""run_or_reuse: a run is made once, and a run found in the directory is shown only for the settings,
model and data it was made with."""
import copy
import dataclasses

import pytest

from evoprune.errors import EvopruneError
from evoprune.methods import run_or_reuse
from evoprune.methods.cluster import ClusterConfig
from evoprune.methods.dennc import WeightPruningConfig

SETTINGS = ClusterConfig(ratios=(0.5,), finetune_epochs=1, cache_dir=None)


def test_a_finished_run_is_reused_only_for_its_own_settings_model_and_data(trained_lenet5, mini, tmp_path):
    out = tmp_path / "run"
    assert run_or_reuse(SETTINGS, out, model=trained_lenet5, data=mini) == out
    made = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert run_or_reuse(SETTINGS, out, model=trained_lenet5, data=mini) == out  # reused: nothing written
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == made
    with pytest.raises(EvopruneError, match=r"other settings \(ratios\)"):
        run_or_reuse(dataclasses.replace(SETTINGS, ratios=(0.75,)), out, model=trained_lenet5, data=mini)
    with pytest.raises(EvopruneError, match="holds a cluster run, not a dennc one"):
        run_or_reuse(WeightPruningConfig(), out, model=trained_lenet5, data=mini)
    other = dataclasses.replace(mini, test=mini.test.subset(len(mini.test) // 2))
    with pytest.raises(EvopruneError, match="the test data differ from those"):
        run_or_reuse(SETTINGS, out, model=trained_lenet5, data=other)
    retrained = copy.deepcopy(trained_lenet5)
    next(retrained.parameters()).data.mul_(0.5)
    with pytest.raises(EvopruneError, match="model's weights differ"):
        run_or_reuse(SETTINGS, out, model=retrained, data=mini)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == made
