"""Methods as plugins: the command line, `list` and `summary` come from the METHODS registry."""
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from evoprune import cli
from evoprune.config import BaseModelConfig, cli_fields, option, positive_int
from evoprune.errors import EvopruneError
from evoprune.io import write_json
from evoprune.methods import METHODS, Method, register, summary
from evoprune.methods.emofp import FilterSearchConfig, run_filter_search

OLD_RUN = Path(__file__).resolve().parent.parent / "experiments" / "results" / "emofp_lenet5_mnist"


def test_every_setting_has_help_and_a_check():
    for name in METHODS.names():
        for f, _, _ in cli_fields(METHODS.get(name).config):
            assert f.metadata["help"] and f.metadata["check"] is not None, (name, f.name)


@dataclass
class CountConfig(BaseModelConfig):
    widgets: int = option(3, "widgets to count", positive_int)


def _run_count(cfg, out):
    write_json(Path(out) / "config.json", {"method": "count", "settings": cfg.to_dict()})


def test_a_new_method_is_one_registry_entry(tmp_path, capsys):
    register(Method(name="count", command="count", help="count widgets", description="Count widgets.",
                    config=CountConfig, run=_run_count,
                    summary=lambda run_dir: f"counted {json.loads((run_dir / 'config.json').read_text())['settings']['widgets']}"))
    try:
        assert cli.main(["count", "--out", str(tmp_path / "r"), "--widgets", "7"]) == 0
        assert capsys.readouterr().out.strip() == "counted 7"
        assert cli.main(["summary", str(tmp_path / "r")]) == 0 and "counted 7" in capsys.readouterr().out
        assert cli.main(["count", "--out", str(tmp_path / "s"), "--widgets", "0"]) == 2
        assert "widgets must be a positive integer, got 0" in capsys.readouterr().err
        assert cli.main(["list"]) == 0 and "count (count)" in capsys.readouterr().out
    finally:
        METHODS._entries.pop("count")


def test_summary_dispatches_on_the_recorded_method_and_reads_runs_made_before_methods_were_recorded(capsys):
    assert "method" not in json.loads((OLD_RUN / "config.json").read_text())
    assert cli.main(["summary", str(OLD_RUN)]) == 0
    assert "lenet5 on mnist" in capsys.readouterr().out


def test_summary_of_a_damaged_run_is_one_sentence(tmp_path, capsys):
    (tmp_path / "config.json").write_text('{"method": "emofp", "settings": {')
    assert cli.main(["summary", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "config.json is damaged and cannot be read" in err and err.count("\n") == 1
    with pytest.raises(EvopruneError, match="unknown method 'nope'"):
        write_json(tmp_path / "config.json", {"method": "nope"})
        summary(tmp_path)


def test_termination_and_callback_pass_through_to_pymoo(tmp_path, mini, trained_lenet5):
    seen = []
    cfg = FilterSearchConfig(pop_size=6, select=1, finetune_epochs=1, max_drop=0.3, cache_dir=None)
    result = run_filter_search(cfg, tmp_path / "r", model=trained_lenet5, data=mini, termination=("n_gen", 2),
                               callback=lambda algorithm: seen.append(algorithm.n_gen))
    assert seen == [1, 2] and result.history["generation"].tolist() == [1, 2]
    assert json.loads((tmp_path / "r" / "config.json").read_text())["method"] == "emofp"


def test_every_method_returns_the_same_result_type_with_its_tables(tmp_path, mini, trained_lenet5):
    from evoprune.methods.baseline import BaselineConfig, run_baseline
    from evoprune.methods.cluster import ClusterConfig, run_cluster
    from evoprune.runs import Result

    common = dict(finetune_epochs=1, cache_dir=None)
    results = [run_baseline(BaselineConfig(budgets=(0.5,), **common), tmp_path / "b", model=trained_lenet5, data=mini),
               run_cluster(ClusterConfig(ratios=(0.5,), **common), tmp_path / "c", model=trained_lenet5, data=mini)]
    for result in results:
        assert type(result) is Result and result.base["params"] == 431080 and len(result.results) == 1
        assert result.tables["results"] is result.results
    with pytest.raises(AttributeError, match="has no table or attribute 'pareto'"):
        results[0].pareto
