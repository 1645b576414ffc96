"""The caller's own DataLoaders: training and test scoring stream through them, the validation split
is read once into memory, and a streamed split scores exactly like the same images preloaded."""
import json

import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from evoprune.data import DatasetSplits, LoaderSplit, TensorSplit
from evoprune.errors import EvopruneError
from evoprune.methods.emofp import FilterSearchConfig, run_filter_search
from evoprune.models import load_pruned
from evoprune.train import TrainConfig, evaluate, fit
from test_physical_removal import ResidualNet


def loader(split: TensorSplit, **kwargs) -> DataLoader:
    return DataLoader(TensorDataset(split.x, split.y), batch_size=kwargs.pop("batch_size", 64), **kwargs)


def test_a_streamed_split_scores_like_the_preloaded_one(trained_lenet5, mini):
    preloaded = evaluate(trained_lenet5, mini.test)
    streamed = evaluate(trained_lenet5, LoaderSplit(loader(mini.test, batch_size=77)))
    assert streamed["accuracy"] == preloaded["accuracy"]
    assert streamed["loss"] == pytest.approx(preloaded["loss"], rel=1e-5)


def test_training_streams_one_optimizer_step_per_loader_batch(mini):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    steps = []
    fit(model, LoaderSplit(loader(mini.train, batch_size=100, shuffle=True)), TrainConfig(epochs=2, lr=0.1),
        after_step=steps.append, progress=False)
    assert steps[-1] == 2 * -(-len(mini.train) // 100)
    assert evaluate(model, mini.val)["accuracy"] > 0.8


def test_a_user_resnet_on_its_own_dataloaders_is_pruned_with_residual_channels_together(tmp_path, mini):
    data = DatasetSplits("mine", loader(mini.train, shuffle=True), loader(mini.val), loader(mini.test), 10)
    torch.manual_seed(0)
    cfg = FilterSearchConfig(train_given_model=True, epochs=2, lr=0.05, pop_size=8, generations=2, select=2,
                             finetune_epochs=1, max_drop=0.3, cache_dir=str(tmp_path / "cache"))
    result = run_filter_search(cfg, tmp_path / "run", model=ResidualNet(), data=data)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["train_fingerprint"] is None  # streamed: nothing to key the cache by
    assert config["data_sizes"] == {"train": len(mini.train), "val": len(mini.val), "test": len(mini.test)}
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    assert result.base["test_accuracy"] > 0.2  # trained through the loader: well above chance (0.1)
    for row in pd.read_csv(tmp_path / "run" / "finetuned.csv").itertuples():
        pruned = load_pruned(tmp_path / "run" / row.model_file, ResidualNet())
        # the residual add joins stem and body: they keep the same number of filters
        assert pruned.stem[0].out_channels == pruned.body[0].out_channels
        assert evaluate(pruned, mini.test)["accuracy"] == pytest.approx(row.test_accuracy_after, abs=1e-9)


class Endless(IterableDataset):
    def __iter__(self):
        while True:
            yield torch.zeros(1, 28, 28), 0


@pytest.mark.parametrize("train, words", [
    (lambda m: DataLoader(TensorDataset((m.train.x * 255).to(torch.uint8), m.train.y), batch_size=64),
     "train images must be a float tensor (N, C, H, W), normalised, got torch.uint8"),
    (lambda m: DataLoader(Endless(), batch_size=8), "must have a length"),
    (lambda m: DataLoader(list(range(10)), batch_size=4), "(images, labels) tensor pairs; batch 0 is a Tensor"),
])
def test_a_loader_that_would_train_wrong_is_refused_in_one_sentence(tmp_path, mini, train, words):
    data = DatasetSplits("mine", train(mini), mini.val, mini.test, 10)
    with pytest.raises(EvopruneError) as e:
        run_filter_search(FilterSearchConfig(cache_dir=None), tmp_path / "run", model=ResidualNet(), data=data)
    assert words in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "run").exists()
