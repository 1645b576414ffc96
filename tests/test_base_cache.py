"""The base-model cache: keyed by everything that determines the trained weights, safe to share."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from evoprune.config import BaseModelConfig
from evoprune.data import DatasetSplits
from evoprune.data.splits import TensorSplit
from evoprune.errors import EvopruneError
from evoprune.runs import train_base
from evoprune.fingerprints import data_fingerprint, weights_fingerprint
from evoprune.train import TrainConfig, base_cache_key, train_cached

CFG = TrainConfig(epochs=1, batch_size=16)
REPO = Path(__file__).resolve().parents[1]


def tiny_data(n=64, seed=0) -> TensorSplit:
    gen = torch.Generator().manual_seed(seed)
    return TensorSplit(torch.randn(n, 1, 6, 6, generator=gen), torch.randint(0, 3, (n,), generator=gen))


def tiny_model(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.ReLU(), nn.Linear(8, 3))


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_weights(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_inputs_hit_with_identical_weights(tmp_path):
    data = tiny_data()
    first, second = tiny_model(), tiny_model()
    key = base_cache_key(first, data, CFG, None)
    assert len(key) == 32 and int(key, 16) >= 0
    assert base_cache_key(second, data, CFG, None) == key
    assert train_cached(first, data, CFG, tmp_path / "new" / "cache", key) is False
    assert (tmp_path / "new" / "cache" / f"base-{key}.pt").is_file()
    initial = state(second)
    assert train_cached(second, data, CFG, tmp_path / "new" / "cache", key) is True
    assert not same_weights(state(second), initial)
    assert same_weights(state(second), state(first))
    assert not second.training


@pytest.mark.parametrize("change", ["labels permuted", "one pixel"])
def test_different_data_of_same_shape_is_a_miss(tmp_path, change):
    data = tiny_data()
    if change == "labels permuted":
        other = TensorSplit(data.x, data.y.roll(1))
    else:
        x = data.x.clone()
        x[5, 0, 2, 3] += 1e-3
        other = TensorSplit(x, data.y)
    assert data_fingerprint(other) != data_fingerprint(data)
    model_a, model_b = tiny_model(), tiny_model()
    key_a, key_b = base_cache_key(model_a, data, CFG, None), base_cache_key(model_b, other, CFG, None)
    assert key_a != key_b
    assert train_cached(model_a, data, CFG, tmp_path, key_a) is False
    initial = state(model_b)
    assert train_cached(model_b, other, CFG, tmp_path, key_b) is False  # trained, not loaded
    assert not same_weights(state(model_b), initial)
    assert not same_weights(state(model_b), state(model_a))


def test_initial_weights_settings_and_architecture_change_the_key():
    data = tiny_data()
    key = base_cache_key(tiny_model(0), data, CFG, None)
    assert base_cache_key(tiny_model(1), data, CFG, None) != key
    assert base_cache_key(tiny_model(0), data, TrainConfig(epochs=1, batch_size=16, lr=0.01), None) != key
    assert base_cache_key(tiny_model(0), data, TrainConfig(epochs=1, batch_size=16, seed=1), None) != key
    arch = {"name": "tiny", "kwargs": {"num_classes": 3}}
    assert base_cache_key(tiny_model(0), data, CFG, arch) != key
    assert base_cache_key(tiny_model(0), data, CFG, {**arch, "kwargs": {"num_classes": 4}}) != \
        base_cache_key(tiny_model(0), data, CFG, arch)
    # the key reads the weights, it does not change them
    model = tiny_model(0)
    before = weights_fingerprint(model)
    base_cache_key(model, data, CFG, None)
    assert weights_fingerprint(model) == before


USER_MODEL = """
import torch
from torch import nn

SCALE = {scale}

def features(x):
    return x.flatten(1){op} * SCALE

class Net(nn.Module):
    def __init__(self, shift):
        super().__init__()
        self.fc = nn.Linear(36, 3)
        self.shift = shift

    def forward(self, x):
        return self.fc(features(x) + self.shift)
"""


def user_model(op: str = "", scale: float = 1.0, shift: float = 0.0) -> nn.Module:
    """A model class defined as in a notebook (no source file): its helper's body ``op``, a global
    ``scale`` the helper reads, a plain attribute ``shift``."""
    namespace = {"__name__": "notebook"}
    exec(USER_MODEL.format(op=op, scale=scale), namespace)
    torch.manual_seed(0)
    return namespace["Net"](shift)


def test_editing_the_code_a_model_runs_changes_the_key():
    """Same class name, modules and initial weights: only what forward computes differs, and so would
    the weights training gives."""
    data = tiny_data()
    key = base_cache_key(user_model(), data, CFG, None)
    assert base_cache_key(user_model(), data, CFG, None) == key  # defined again, unchanged: a hit
    for changed in (user_model(op=".relu()"), user_model(scale=2.0), user_model(shift=0.5)):
        assert weights_fingerprint(changed) == weights_fingerprint(user_model())
        assert base_cache_key(changed, data, CFG, None) != key


def test_train_base_tells_same_sized_datasets_apart(tmp_path):
    """Two data sets with the same name and sizes (e.g. two --data-root directories) must not share a base."""
    def splits(seed):
        return DatasetSplits("mnist", tiny_data(64, seed), tiny_data(16, seed + 10), tiny_data(16, seed + 20), 3)

    cfg = BaseModelConfig(dataset="mnist", epochs=1, batch_size=16, cache_dir=str(tmp_path))
    for seed, expect_hit in [(0, False), (1, False), (0, True)]:
        timings = {}
        train_base(cfg, tiny_model(), None, splits(seed), timings)
        assert timings["base_from_cache"] is expect_hit


@pytest.mark.parametrize("damage", ["garbage bytes", "wrong shapes"])
def test_damaged_entry_is_retrained_and_replaced(tmp_path, damage):
    data = tiny_data()
    reference = tiny_model()
    key = base_cache_key(reference, data, CFG, None)
    train_cached(reference, data, CFG, None, key)  # the weights a clean training gives
    path = tmp_path / f"base-{key}.pt"
    if damage == "garbage bytes":
        path.write_bytes(b"not a torch file")
    else:  # a readable file whose first tensor has the model's shape but the last one does not
        bad = state(reference)
        bad = {k: (torch.zeros(1) if k == "3.bias" else v + 1) for k, v in bad.items()}
        torch.save(bad, path)
    model = tiny_model()
    assert train_cached(model, data, CFG, tmp_path, key) is False
    # trained from the true initial weights, not from a half-loaded damaged entry
    assert same_weights(state(model), state(reference))
    replaced = torch.load(path, weights_only=True)
    assert same_weights(replaced, state(reference))
    assert train_cached(tiny_model(), data, CFG, tmp_path, key) is True


def test_bad_cache_arguments(tmp_path):
    data, model = tiny_data(), tiny_model()
    with pytest.raises(EvopruneError, match="cache key"):
        train_cached(model, data, CFG, tmp_path, "../escape")
    (tmp_path / "file").write_text("")
    with pytest.raises(EvopruneError, match="not a directory"):
        train_cached(model, data, CFG, tmp_path / "file", "abc")


WORKER = """
import json, sys
import torch
from torch import nn
from evoprune.data.splits import TensorSplit
from evoprune.fingerprints import weights_fingerprint
from evoprune.train import TrainConfig, base_cache_key, train_cached

cache_dir = sys.argv[1]
gen = torch.Generator().manual_seed(0)
data = TensorSplit(torch.randn(2000, 1, 6, 6, generator=gen), torch.randint(0, 3, (2000,), generator=gen))
torch.manual_seed(0)
model = nn.Sequential(nn.Flatten(), nn.Linear(36, 64), nn.ReLU(), nn.Linear(64, 3))
cfg = TrainConfig(epochs=3, batch_size=16)
key = base_cache_key(model, data, cfg, None)
print("ready", flush=True)
sys.stdin.readline()  # both processes reach the cache at the same moment
hit = train_cached(model, data, cfg, cache_dir, key)
print(json.dumps({"hit": hit, "key": key, "weights": weights_fingerprint(model)}))
"""


def test_concurrent_runs_train_once(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path / "cache")], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    for p in procs:  # released together once both have imported torch and built their inputs
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(r["hit"] for r in results) == [False, True]
    assert results[0]["key"] == results[1]["key"]
    assert results[0]["weights"] == results[1]["weights"]
