"""A base training killed mid-way resumes from its last finished epoch and ends with the weights an
uninterrupted training reaches: hours of training on a small machine are never lost to a stop."""
import pytest
import torch
from torch import nn

from evoprune.config import BaseModelConfig
from evoprune.data import DatasetSplits
from evoprune.data.splits import TensorSplit
from evoprune.runs import train_base
from evoprune.train import TrainConfig, base_cache_key, fit, partial_training, train_cached

CFG = TrainConfig(epochs=3, batch_size=16, lr=0.05)


class Killed(Exception):
    pass


def data() -> TensorSplit:
    gen = torch.Generator().manual_seed(0)
    # crop-flip draws from the training's generator: resuming must restore it too
    return TensorSplit(torch.randn(80, 1, 8, 8, generator=gen), torch.randint(0, 3, (80,), generator=gen),
                       augment="crop-flip")


def model() -> nn.Module:
    torch.manual_seed(0)
    # dropout draws from torch's global generator, which resuming must restore as well
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Dropout(0.3),
                         nn.Linear(144, 3))


def kill_at(step: int):
    def after_step(s):
        if s == step:
            raise Killed

    return after_step


def uninterrupted() -> dict:
    net = model()
    torch.manual_seed(1)
    fit(net, data(), CFG, progress=False)
    return net.state_dict()


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_killed_training_resumes_to_the_uninterrupted_weights(tmp_path):
    expected = uninterrupted()
    checkpoint = tmp_path / "train.partial.pt"
    killed = model()
    torch.manual_seed(1)
    with pytest.raises(Killed):  # killed in the middle of the second epoch (5 steps per epoch)
        fit(killed, data(), CFG, progress=False, checkpoint=checkpoint, after_step=kill_at(8))
    assert checkpoint.is_file()
    resumed = model()
    torch.manual_seed(123)  # whatever the global generator holds now, the checkpoint's state wins
    losses = fit(resumed, data(), CFG, progress=False, checkpoint=checkpoint)
    assert len(losses) == CFG.epochs
    assert same(resumed.state_dict(), expected)


def test_a_damaged_checkpoint_is_not_trusted(tmp_path):
    checkpoint = tmp_path / "train.partial.pt"
    checkpoint.write_bytes(b"torn")
    net = model()
    torch.manual_seed(1)
    assert len(fit(net, data(), CFG, progress=False, checkpoint=checkpoint)) == CFG.epochs
    assert same(net.state_dict(), uninterrupted())


def test_the_base_cache_resumes_its_training_and_keeps_no_partial_file(tmp_path):
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.05, seed=1)
    key = base_cache_key(model(), data(), cfg, None)
    partial = tmp_path / f"base-{key}.partial.pt"
    killed = model()
    torch.manual_seed(cfg.seed)
    with pytest.raises(Killed):
        fit(killed, data(), cfg, progress=False, checkpoint=partial, after_step=kill_at(12))
    resumed = model()
    assert train_cached(resumed, data(), cfg, tmp_path, key) is False
    assert not partial.exists()
    assert (tmp_path / f"base-{key}.pt").is_file()
    fresh = model()
    torch.manual_seed(cfg.seed)
    fit(fresh, data(), cfg, progress=False)
    assert same(resumed.state_dict(), fresh.state_dict())


def test_a_resumed_base_training_says_so_in_its_timings(tmp_path):
    """This sitting's time is not the training's: a report must not quote it as the training time."""
    splits = DatasetSplits("mnist", data(), data().subset(16), data().subset(16), 3)
    cfg = BaseModelConfig(dataset="mnist", epochs=3, batch_size=16, lr=0.05, cache_dir=str(tmp_path))
    train = TrainConfig(epochs=3, batch_size=16, lr=0.05, seed=cfg.seed)
    partial = partial_training(tmp_path, base_cache_key(model(), splits.train, train, None))
    killed = model()
    torch.manual_seed(cfg.seed)
    with pytest.raises(Killed):
        fit(killed, splits.train, train, progress=False, checkpoint=partial, after_step=kill_at(7))
    timings = {}
    train_base(cfg, model(), None, splits, timings)
    assert timings["base_resumed"] is True and timings["base_from_cache"] is False
    again = {}
    train_base(cfg, model(), None, splits, again)
    assert again["base_resumed"] is False and again["base_from_cache"] is True
