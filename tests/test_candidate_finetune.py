"""Candidate fine-tuning: a search fitness that predicts accuracy after fine-tuning."""
import json

import numpy as np
import pandas as pd
import torch
from torch import nn

from evoprune.cli import main
from evoprune.fitness import ShortTraining
from evoprune.problems import FilterPruningProblem
from evoprune.train import TrainConfig, evaluate, fit


def test_briefly_trained_candidates_score_higher_and_the_scored_network_is_the_one_kept(trained_lenet5, mini):
    X = np.array([[0.9, 0.9], [0.8, 0.95], [0.95, 0.6]])
    plain = FilterPruningProblem(trained_lenet5, mini.val, max_ratio=0.95, max_drop=1.0)
    proxy = FilterPruningProblem(trained_lenet5, mini.val, max_ratio=0.95, max_drop=1.0,
                                 short_training=ShortTraining(mini.train.subset(1280), lr=0.01))
    assert proxy.evaluator.suffix is None  # the first layer trains too: no shared prefix
    errors_plain, errors_proxy = plain.evaluate(X)[0][:, 1], proxy.evaluate(X)[0][:, 1]
    assert (errors_proxy < errors_plain).all()
    kept = proxy.keep(X[0])
    assert evaluate(proxy.pruned_network(kept), mini.val)["accuracy"] == proxy.fitness(kept).accuracy
    # the base model is not trained by scoring its candidates
    assert proxy.base.accuracy == plain.base.accuracy


def test_search_with_candidate_finetuning_runs_end_to_end(tmp_path):
    out = tmp_path / "proxy"
    assert main(["filters", "--out", str(out), "--cache-dir", str(tmp_path / "c"), "--epochs", "1", "--pop-size", "6",
                 "--generations", "2", "--select", "2", "--finetune-epochs", "1", "--max-drop", "0.05",
                 "--max-ratio", "0.9", "--candidate-finetune", "640", "--finalists", "1"]) == 0
    assert json.loads((out / "config.json").read_text())["settings"]["candidate_finetune"] == 640
    finetuned = pd.read_csv(out / "finetuned.csv")
    pareto = pd.read_csv(out / "pareto.csv").set_index(pd.RangeIndex(len(pd.read_csv(out / "pareto.csv"))))
    for _, row in finetuned.iterrows():
        assert abs(row["val_accuracy_before"] - pareto.loc[row["pareto_row"], "val_accuracy"]) <= 2 / 1000


def test_with_dropout_the_scored_network_is_rebuilt_exactly_and_scores_repeat(mini):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 5), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(256, 10))
    fit(model, mini.train, TrainConfig(epochs=1, seed=0), progress=False)
    X = np.array([[0.5, 0.5], [0.25, 0.75]])

    def scored():
        problem = FilterPruningProblem(model, mini.val, max_ratio=0.9, max_drop=1.0, workers=2,
                                       short_training=ShortTraining(mini.train.subset(640), lr=0.01))
        return problem, problem.evaluate(X)[0][:, 1]

    problem, errors = scored()
    torch.rand(100)  # other draws from torch's global generator in between change nothing
    assert np.array_equal(scored()[1], errors)
    for x in X:  # the network handed on for fine-tuning is the one the search scored
        kept = problem.keep(x)
        assert evaluate(problem.pruned_network(kept), mini.val)["accuracy"] == problem.fitness(kept).accuracy
