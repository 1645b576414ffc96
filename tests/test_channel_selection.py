"""GA channel selection (Hu et al.): one layer's binary mask as a pymoo Problem, and `evoprune channels`."""
import json

import numpy as np
import pandas as pd
import pytest
from pymoo.optimize import minimize

from evoprune import cli
from evoprune.data import load_dataset
from evoprune.errors import EvopruneError
from evoprune.methods.channels import ChannelSelectionConfig, default_ga, run_channels
from evoprune.models import load_pruned
from evoprune.problems import channel_selection_problem
from evoprune.pruning import LayerMaskSelection, PrunableStructure
from evoprune.train import evaluate

TINY = ["--epochs", "1", "--pop-size", "6", "--generations", "2", "--finetune-epochs", "1", "--max-drop", "0.05"]


def test_a_mask_decodes_to_exactly_those_channels_of_that_layer_only(trained_lenet5, mini):
    problem = channel_selection_problem(trained_lenet5, mini.val.subset(300), layer="2")
    assert (problem.n_var, problem.n_obj, problem.selection.layer, problem.vtype) == (50, 1, 1, bool)
    x = np.zeros(50, dtype=bool)
    x[[0, 7, 49]] = True
    assert problem.keep(x) == (tuple(range(20)), (0, 7, 49))
    assert channel_selection_problem(trained_lenet5, mini.val.subset(300), layer=1).keep(x) == problem.keep(x)
    # an empty mask keeps the layer's most important filter instead of breaking the network
    assert problem.keep(np.zeros(50)) == (tuple(range(20)), (int(problem.selection.rankings[1][0]),))
    # with other layers already restricted, the mask ranges over what the layer keeps now
    current = ((1, 3, 5), tuple(range(0, 50, 2)))
    restricted = channel_selection_problem(trained_lenet5, mini.val.subset(300), layer="0", current=current)
    assert restricted.n_var == 3 and restricted.full == current
    assert restricted.keep([1, 0, 1]) == ((1, 5), current[1])
    assert restricted.base.accuracy == restricted.fitness(current).accuracy  # the drop is measured from current
    with pytest.raises(EvopruneError, match="layer '7' is not a prunable layer of this model; prunable: 0, 2"):
        channel_selection_problem(trained_lenet5, mini.val.subset(300), layer="7")
    with pytest.raises(EvopruneError, match="expected a mask of 50 bits"):
        problem.keep(np.ones(3))


def test_the_layer_objective_belongs_to_a_layer_mask_search_only(trained_lenet5, mini):
    from evoprune.methods.emofp import FilterSearchConfig
    from evoprune.problems import FilterPruningProblem

    with pytest.raises(EvopruneError, match="the layer-channels objective needs a LayerMaskSelection, not a "
                                            "RatioSelection"):
        FilterPruningProblem(trained_lenet5, mini.val.subset(300), objectives=("layer-channels",))
    with pytest.raises(EvopruneError, match="unknown objective 'layer-channels'; known: error, filters, flops, latency, onnx-latency, params$"):
        FilterSearchConfig(objectives=("layer-channels",)).validate()
    with pytest.raises(EvopruneError, match="racing needs 'error' among the objectives"):
        FilterPruningProblem(trained_lenet5, mini.val.subset(300), objectives=("layer-channels",), race=True,
                             selection=LayerMaskSelection("2"))


def test_the_all_ones_mask_is_in_the_first_population_and_feasible(trained_lenet5, mini):
    problem = channel_selection_problem(trained_lenet5, mini.val.subset(300), layer="2", max_drop=0.0)
    first = []
    minimize(problem, default_ga(problem, 8, seed=0), ("n_gen", 1), seed=0,
             callback=lambda algorithm: first.append(algorithm.pop))
    X, G = first[0].get("X"), first[0].get("G")
    ones = np.flatnonzero(X.all(axis=1))
    assert len(ones) == 1 and G[ones[0], 0] <= 0  # feasible even with no drop allowed at all
    F, _ = problem.evaluate(np.ones((1, 50)))
    # kept fraction plus the error as a tie-breaker smaller than one channel
    assert F[0, 0] == pytest.approx(1 + (1 - problem.base.accuracy) / 100)


def test_minimize_finds_a_feasible_mask_with_fewer_channels(trained_lenet5, mini):
    problem = channel_selection_problem(trained_lenet5, mini.val.subset(300), layer="2", max_drop=0.05)
    res = minimize(problem, default_ga(problem, 10, seed=0), ("n_gen", 4), seed=0)
    kept = problem.keep(res.X)
    assert res.G[0] <= 0 and len(kept[1]) < 50 and kept[0] == tuple(range(20))
    assert problem.fitness(kept).accuracy >= problem.base.accuracy - 0.05
    # the physically pruned network is the one scored
    pruned = problem.pruned_network(kept)
    assert pruned[2].out_channels == len(kept[1])
    assert evaluate(pruned, mini.val.subset(300))["accuracy"] == pytest.approx(problem.fitness(kept).accuracy)


def test_screening_scores_most_masks_on_the_subset_only(trained_lenet5, mini):
    problem = channel_selection_problem(trained_lenet5, mini.val.subset(400), layer="2", max_drop=0.02, screen=100)
    minimize(problem, default_ga(problem, 12, seed=0), ("n_gen", 4), seed=0)
    distinct = len(problem.evaluator.cache.keys() | problem.evaluator.subset_cache.keys())
    assert problem.evaluator.computed_subset > 0 and problem.evaluator.computed < distinct


def test_termination_and_callback_pass_through_for_every_layer(tmp_path, trained_lenet5, mini):
    seen = []
    cfg = ChannelSelectionConfig(pop_size=6, finetune_epochs=1, layer_finetune_epochs=0, max_drop=0.05,
                                 screen=None, cache_dir=None)
    result = run_channels(cfg, tmp_path / "r", model=trained_lenet5, data=mini, termination=("n_gen", 2),
                          callback=lambda algorithm: seen.append(algorithm.n_gen))
    assert seen == [1, 2, 1, 2] and result.history["generation"].tolist() == [1, 2, 1, 2]
    assert sorted(result.layers["layer"].astype(str)) == ["0", "2"]
    assert result.result["filters_after"] < result.result["filters_before"] == 70
    assert json.loads((tmp_path / "r" / "config.json").read_text())["method"] == "channels"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "c"
    cache = tmp_path_factory.mktemp("cache")
    assert cli.main(["channels", "--out", str(out), "--cache-dir", str(cache), *TINY]) == 0
    return out


def test_channels_command_writes_the_run_directory(run_dir):
    for name in ["config.json", "base.json", "base_model.pt", "sensitivity.csv", "layers.csv", "history.csv",
                 "result.json", "timings.json", "pruned_model.pt", "figures/channels_per_layer.png",
                 "figures/accuracy.png"]:
        assert (run_dir / name).is_file(), name
    settings = json.loads((run_dir / "config.json").read_text())["settings"]
    assert settings["distill"] is True and settings["screen"] == 500 and settings["pop_size"] == 6
    sensitivity = pd.read_csv(run_dir / "sensitivity.csv")
    assert sensitivity["channels"].tolist() == [20, 50] and sorted(sensitivity["order"]) == [0, 1]
    layers = pd.read_csv(run_dir / "layers.csv")
    order = sensitivity.sort_values("order")["layer"].tolist()
    assert layers["layer"].tolist() == order and layers["order"].tolist() == [0, 1]
    assert (layers["channels_after"] <= layers["channels_before"]).all()
    assert [len(str(k).split()) for k in layers["kept"]] == layers["channels_after"].tolist()
    assert ((layers["val_accuracy_start"] - layers["val_accuracy_pruned"]) <= 0.05 + 1e-9).all()
    history = pd.read_csv(run_dir / "history.csv")
    assert history.groupby("order")["generation"].max().tolist() == [2, 2]


def test_saved_model_reproduces_the_recorded_accuracy_and_summary_works(run_dir, capsys):
    result = json.loads((run_dir / "result.json").read_text())
    model = load_pruned(run_dir / "pruned_model.pt")
    assert evaluate(model, load_dataset("mnist-mini").test)["accuracy"] == pytest.approx(result["test_accuracy"],
                                                                                       abs=1e-9)
    layers = pd.read_csv(run_dir / "layers.csv").set_index("layer")
    kept = [layers.loc[int(layer.name), "channels_after"] for layer in PrunableStructure(model, (1, 28, 28)).layers]
    assert [layer.channels for layer in PrunableStructure(model, (1, 28, 28)).layers] == kept
    assert result["filters_after"] == sum(kept) and result["params_after"] < result["params_before"]
    assert cli.main(["summary", str(run_dir)]) == 0
    text = capsys.readouterr().out
    assert "GA channel selection of lenet5 on mnist-mini" in text and "channels_after" in text


@pytest.mark.parametrize("args, message", [
    (["--max-drop", "2"], "max_drop 2 must be a non-negative accuracy fraction, at most 1"),
    (["--screen", "0"], "screen must be a positive number of validation images, got 0"),
    (["--sensitivity-ratio", "1"], "sensitivity_ratio 1 must lie strictly between 0 and 1"),
])
def test_bad_settings_exit_2_with_one_sentence_before_any_compute(tmp_path, capsys, args, message):
    out = tmp_path / "r"
    assert cli.main(["channels", "--out", str(out), "--cache-dir", str(tmp_path / "c"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_distillation_is_on_by_default_and_can_be_turned_off():
    parse = cli._parser().parse_args
    assert cli._settings(parse(["channels", "--out", "x"]), ChannelSelectionConfig).distill is True
    off = cli._settings(parse(["channels", "--out", "x", "--no-distill", "--screen", "none"]), ChannelSelectionConfig)
    assert off.distill is False and off.screen is None
