"""A measure added as one registry entry: the CPU time of the network exported to ONNX and run by
ONNX Runtime, as deployed, is an objective and a budget of the filter search, a column of its front,
and is refused in one sentence where onnxruntime is missing."""
import importlib.util

import numpy as np
import pandas as pd
import pytest

from evoprune.cli import main
from evoprune.errors import EvopruneError
from evoprune.problems import FilterPruningProblem
from evoprune.problems.measures import check_objectives


def test_onnx_latency_is_measured_once_per_network_as_a_fraction_of_the_base(trained_lenet5, mini):
    problem = FilterPruningProblem(trained_lenet5, mini.val.subset(200), objectives=("onnx-latency", "error"),
                                   max_drop=1.0)
    X = np.array([[0.0, 0.0], [0.9, 0.9], [0.9, 0.9]])
    F, _ = problem.evaluate(X)
    assert F[0, 0] == 1.0 and F[1, 0] == F[2, 0] and 0 < F[1, 0]
    measured = {k for k in problem.costs.cache if k[0] == "onnx-latency"}
    assert len(measured) == 2  # the base and one pruned network: measured once each
    problem.evaluate(X)
    assert {k for k in problem.costs.cache if k[0] == "onnx-latency"} == measured


def test_a_search_with_an_onnx_latency_budget_from_the_cli(tmp_path):
    out = tmp_path / "run"
    assert main(["filters", "--out", str(out), "--objectives", "onnx-latency,error", "--max-onnx-latency", "0.95",
                 "--epochs", "1", "--pop-size", "6", "--generations", "2", "--select", "1", "--finetune-epochs", "1",
                 "--max-drop", "0.3", "--cache-dir", "none"]) == 0
    pareto = pd.read_csv(out / "pareto.csv")
    assert len(pareto) and (pareto["onnx_latency_fraction"] <= 0.95).all()


def test_missing_onnxruntime_is_one_sentence_before_any_compute(monkeypatch, tmp_path, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(EvopruneError, match=r"the onnx-latency measure needs onnxruntime: pip install 'evoprune\[export\]'"):
        check_objectives(("onnx-latency", "error"))
    assert main(["filters", "--out", str(tmp_path / "run"), "--objectives", "onnx-latency,error"]) == 2
    assert "needs onnxruntime" in capsys.readouterr().err and not (tmp_path / "run").exists()
