"""Committed results cannot drift from their evidence: the tables in each results file are what
its script generates from the committed CSV."""
import importlib.util
from pathlib import Path

import pandas as pd

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
RESULTS = EXPERIMENTS / "results"


def script(name):
    spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_methods_tables_are_generated_from_its_csv():
    compare = script("compare_methods")
    table = pd.read_csv(RESULTS / "compare_methods.csv")
    corr = pd.read_csv(RESULTS / "compare_methods_correlation.csv")
    committed = (RESULTS / "compare_methods.md").read_text()
    for generated in compare.tables(table, corr):
        assert generated in committed
    assert compare.tables(table, corr)[1] == compare.md_table(compare.rank_correlations(table), 3)


def test_deep_fmnist_results_file_is_generated_from_its_csv():
    deep = script("deep_fmnist")
    args = deep.parse([])
    committed = RESULTS / "deep_fmnist.md"
    assert committed.is_file() == (RESULTS / "deep_fmnist.csv").is_file()
    if committed.is_file():
        assert deep.render(args) == committed.read_text()
