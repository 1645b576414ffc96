"""Choosing a network from a finished run's front: pymoo's decision making or a constraint, the
chosen network fine-tuned once and saved beside the others."""
import pandas as pd
import pytest

from evoprune.cli import main
from evoprune.data import load_dataset
from evoprune.errors import EvopruneError
from evoprune.methods.emofp.pick import choose, pick
from evoprune.models import load_pruned
from evoprune.train import evaluate

TINY = ["--epochs", "1", "--pop-size", "10", "--generations", "4", "--select", "1", "--finetune-epochs", "1",
        "--max-drop", "0.2"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("pick") / "run"
    assert main(["filters", "--out", str(out), "--cache-dir", "none", *TINY]) == 0
    return out


def front(run_dir):
    return pd.read_csv(run_dir / "pareto.csv")


def test_constraints_choose_the_network_the_user_asked_for(run_dir):
    pareto = front(run_dir)
    drop = sorted(pareto["accuracy_drop"])[len(pareto) // 2]
    i = choose(pareto, ("filters", "error"), "max-drop", drop)
    within = pareto[pareto["accuracy_drop"] <= drop]
    assert pareto.loc[i, "filters_kept_fraction"] == within["filters_kept_fraction"].min()
    limit = pareto["params"].median()
    i = choose(pareto, ("filters", "error"), "max-params", limit)
    assert pareto.loc[i, "val_error"] == pareto[pareto["params"] <= limit]["val_error"].min()
    filters = int(pareto["filters_kept"].median())
    i = choose(pareto, ("filters", "error"), "max-filters", filters)
    assert pareto.loc[i, "filters_kept"] <= filters
    assert pareto.loc[i, "val_error"] == pareto[pareto["filters_kept"] <= filters]["val_error"].min()


def test_weights_move_the_choice_along_the_front(run_dir):
    pareto = front(run_dir)
    small = choose(pareto, ("filters", "error"), "asf", "1,0.01")  # mostly size
    accurate = choose(pareto, ("filters", "error"), "asf", "0.01,1")  # mostly error
    assert pareto.loc[small, "filters_kept_fraction"] < pareto.loc[accurate, "filters_kept_fraction"]
    assert pareto.loc[small, "val_error"] > pareto.loc[accurate, "val_error"]
    assert choose(pareto, ("filters", "error"), "pseudo-weights", [1, 0]) == pareto["filters_kept_fraction"].idxmin()


def test_a_new_choice_is_fine_tuned_saved_and_reloads_with_its_accuracy(run_dir):
    before = pd.read_csv(run_dir / "finetuned.csv")
    pareto = front(run_dir)
    new = next(i for i in pareto.index if i not in set(before["pareto_row"]))
    drop = pareto.loc[new, "accuracy_drop"]
    picked = pick(run_dir, "max-drop", drop) if choose(pareto, ("filters", "error"), "max-drop", drop) == new \
        else pick(run_dir, "max-params", pareto.loc[new, "params"])
    after = pd.read_csv(run_dir / "finetuned.csv")
    assert len(after) == len(before) + 1 and picked["model_file"] == "models/pruned_01.pt"
    model = load_pruned(run_dir / picked["model_file"])
    assert evaluate(model, load_dataset("mnist-mini").test)["accuracy"] == pytest.approx(picked["test_accuracy_after"])
    # asked again, the same network is not fine-tuned twice
    assert main(["pick", str(run_dir), "--by", "max-params", "--value", str(pareto.loc[new, "params"])]) == 0
    assert len(pd.read_csv(run_dir / "finetuned.csv")) == len(after)


@pytest.mark.parametrize("by, value, words", [
    ("best", None, "unknown choice 'best'"),
    ("asf", "1,2,3", "asf needs 2 non-negative weights"),
    ("pseudo-weights", "x", "pseudo-weights needs 2"),
    ("max-drop", "-1", "max-drop needs a number >= 0"),
    ("max-drop", "2", "an accuracy drop as a fraction, at most 1"),  # points, not a fraction: not every network
    ("max-params", "1", "no network on the front has params <= 1"),
])
def test_bad_choices_are_one_sentence(run_dir, capsys, by, value, words):
    with pytest.raises(EvopruneError, match=words):
        pick(run_dir, by, value)
    assert main(["pick", str(run_dir), "--by", by] + (["--value", value] if value else [])) == 2
    assert words in capsys.readouterr().err
