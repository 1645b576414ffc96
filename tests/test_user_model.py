"""A user's own trained model and data through the Python API: used as given, never modified,
and recorded for what they are."""
import json

import torch

from evoprune.data import DatasetSplits
from evoprune.fingerprints import data_fingerprint
from evoprune.methods.emofp import FilterSearchConfig, run_filter_search
from evoprune.train import evaluate

TINY = dict(pop_size=6, generations=2, select=1, finetune_epochs=1, max_drop=0.3)


def test_a_trained_model_is_used_as_it_is_and_never_modified(tmp_path, trained_lenet5, mini):
    before = {k: v.clone() for k, v in trained_lenet5.state_dict().items()}
    accuracy = evaluate(trained_lenet5, mini.test)["accuracy"]
    result = run_filter_search(FilterSearchConfig(cache_dir=str(tmp_path / "cache"), **TINY), tmp_path / "r",
                               model=trained_lenet5, data=mini)
    assert all(torch.equal(before[k], v) for k, v in trained_lenet5.state_dict().items())
    assert result.base["test_accuracy"] == accuracy  # measured on the model as given: no retraining
    assert result.timings["base_trained"] is False and not (tmp_path / "cache").exists()


def test_the_real_data_source_is_recorded(tmp_path, trained_lenet5, mini):
    shuffled = torch.randperm(len(mini.train), generator=torch.Generator().manual_seed(1))
    own = DatasetSplits("mine", type(mini.train)(mini.train.x[shuffled], mini.train.y[shuffled]), mini.val, mini.test,
                        mini.num_classes)
    run_filter_search(FilterSearchConfig(cache_dir=None, **TINY), tmp_path / "r", model=trained_lenet5, data=own)
    data = json.loads((tmp_path / "r" / "config.json").read_text())["data"]
    assert data["dataset"] == "splits passed to the Python API" and data["root"] is None
    assert data["train_fingerprint"] == data_fingerprint(own.train) != data_fingerprint(mini.train)


def test_asking_for_training_trains_a_copy(tmp_path, mini):
    from evoprune.models import build_model

    torch.manual_seed(0)
    untrained = build_model("lenet5")
    before = {k: v.clone() for k, v in untrained.state_dict().items()}
    result = run_filter_search(FilterSearchConfig(cache_dir=None, epochs=1, train_given_model=True, **TINY),
                               tmp_path / "r", model=untrained, data=mini)
    assert all(torch.equal(before[k], v) for k, v in untrained.state_dict().items())
    assert result.base["test_accuracy"] > 0.8 and result.timings["base_from_cache"] is False
