"""--round-to N: every layer keeps a multiple of N filters, or all of them, in the search's
networks, the allocation rules' networks and the saved models."""
import numpy as np
import pandas as pd
import torch

from evoprune.cli import main
from evoprune.models import build_model, load_pruned
from evoprune.pruning import PrunableStructure, RatioSelection
from evoprune.pruning.allocation import global_ranking, random_allocation, uniform


def allowed(count: int, channels: int, n: int) -> bool:
    return count == channels or (count % n == 0 and 0 < count < channels)


def test_every_rule_keeps_multiples_of_round_to_or_whole_layers():
    torch.manual_seed(0)
    model = build_model("resnet20", num_classes=10, in_channels=1)
    selection = RatioSelection("l1", 0.9, round_to=8).bind(model, PrunableStructure(model, (1, 28, 28)))
    rng = np.random.default_rng(0)
    rules = [uniform(selection), global_ranking(selection), random_allocation(selection, rng)]
    networks = [rule(t) for rule in rules for t in np.linspace(0, 1, 11)]
    networks += [selection.keep(rng.uniform(0, 0.9, len(selection.channels))) for _ in range(50)]
    for kept in networks:
        assert all(allowed(len(k), c, 8) for k, c in zip(kept, selection.channels)), [len(k) for k in kept]
    assert {len(kept[0]) for kept in networks} == {8, 16}  # the 16-filter stem: one multiple, or all of it
    # without it, counts are as before: round(C(1 - ratio))
    plain = RatioSelection("l1", 0.9).bind(model, selection.structure)
    assert plain.counts(np.full(len(plain.channels), 0.3))[0] == 11


def test_a_search_with_round_to_saves_only_such_networks(tmp_path):
    out = tmp_path / "run"
    assert main(["filters", "--round-to", "8", "--out", str(out), "--epochs", "1", "--pop-size", "6",
                 "--generations", "2", "--select", "1", "--finetune-epochs", "1", "--max-drop", "0.3",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    pareto = pd.read_csv(out / "pareto.csv")
    for column, channels in (("kept_0", 20), ("kept_2", 50)):
        assert all(allowed(int(k), channels, 8) for k in pareto[column]), pareto[column].tolist()
    model = load_pruned(out / "models" / "pruned_00.pt")
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert allowed(convs[0].out_channels, 20, 8) and allowed(convs[1].out_channels, 50, 8)
