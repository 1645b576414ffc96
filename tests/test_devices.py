"""--device: the device is resolved (or refused) before any compute, model and data move there once,
and what a run saves loads on any machine. The CUDA test runs where a GPU is present."""
import json

import pandas as pd
import pytest
import torch

from evoprune.devices import device_of, resolve_device
from evoprune.errors import EvopruneError
from evoprune.methods.emofp import FilterSearchConfig, run_filter_search
from evoprune.models import load_pruned

TINY = dict(pop_size=6, generations=2, select=1, finetune_epochs=1, max_drop=0.3, cache_dir=None)


def test_auto_takes_a_gpu_when_there_is_one_and_the_cpu_otherwise():
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(" CPU ") == torch.device("cpu")


@pytest.mark.parametrize("name, words", [("tpu", "unknown; known: auto, cpu, cuda, cuda:N, mps"),
                                         ("cuda:999", "'cuda:999' is not available")])
def test_a_device_this_machine_lacks_is_refused_in_one_sentence(name, words):
    with pytest.raises(EvopruneError) as e:
        resolve_device(name)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_device_of_a_module_is_that_of_its_weights():
    assert device_of(torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert device_of(torch.nn.ReLU()) == torch.device("cpu")  # nothing to move: the CPU


def test_splits_already_on_the_device_are_not_copied(mini):
    assert mini.to(torch.device("cpu")) is mini


def _search(tmp_path, device, model, data):
    out = tmp_path / device
    result = run_filter_search(FilterSearchConfig(device=device, **TINY), out, model=model, data=data)
    return out, result


def test_the_device_is_recorded_with_the_run(tmp_path, trained_lenet5, mini):
    out, result = _search(tmp_path, "cpu", trained_lenet5, mini)
    assert json.loads((out / "config.json").read_text())["settings"]["device"] == "cpu"
    assert len(result.finetuned) == 1 and device_of(trained_lenet5) == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_run_on_cuda_matches_the_cpu_run_and_saves_cpu_tensors(tmp_path, trained_lenet5, mini):
    cpu_out, _ = _search(tmp_path, "cpu", trained_lenet5, mini)
    gpu_out, _ = _search(tmp_path, "cuda", trained_lenet5, mini)
    assert device_of(trained_lenet5) == torch.device("cpu")  # the caller's model is copied, never moved
    cpu_front, gpu_front = (pd.read_csv(o / "pareto.csv") for o in (cpu_out, gpu_out))
    assert len(cpu_front) == len(gpu_front)
    assert (cpu_front["val_accuracy"] - gpu_front["val_accuracy"]).abs().max() < 0.01
    for row in pd.read_csv(gpu_out / "finetuned.csv").itertuples():
        blob = torch.load(gpu_out / row.model_file, map_location="meta", weights_only=True)
        assert all(t.device.type == "meta" for t in blob["state_dict"].values())  # mapped: stored off the GPU
        model = load_pruned(gpu_out / row.model_file)
        assert device_of(model) == torch.device("cpu")
