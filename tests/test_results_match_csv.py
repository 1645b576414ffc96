"""Committed results cannot drift from their evidence: the tables in each results file are what
its script generates from the committed CSV."""
import importlib.util
from pathlib import Path
from types import SimpleNamespace

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


def table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def test_emofp_mnist_tables_are_generated_from_its_csv():
    emofp = script("emofp_mnist")
    args = SimpleNamespace(argv=[], search="", base_epochs=None)
    generated = emofp.markdown(pd.read_csv(RESULTS / "emofp_mnist.csv"), args, "emofp_mnist")
    assert table_lines(generated) == table_lines((RESULTS / "emofp_mnist.md").read_text())


def test_dennc_mnist_tables_are_generated_from_its_csv():
    dennc = script("dennc_mnist")
    generated = dennc.markdown(pd.read_csv(RESULTS / "dennc_mnist.csv"), [], None)
    committed = (RESULTS / "dennc_mnist.md").read_text()
    assert table_lines(generated) == table_lines(committed.split("## Run summaries")[0])
    assert [line for line in generated.splitlines() if line.startswith("- ")] == \
        [line for line in committed.splitlines() if line.startswith("- ")]


def test_cifar10_subset_table_is_generated_from_its_csv():
    cifar = script("cifar10")
    args = SimpleNamespace(settings="subset", argv=[], device="cpu")
    generated = cifar.markdown(pd.read_csv(RESULTS / "cifar10_subset.csv"), args, "cifar10_subset")
    assert table_lines(generated) == table_lines((RESULTS / "cifar10_subset.md").read_text())
