"""Learning-rate defaults: the base rate follows the optimizer (Adam diverges at SGD's 0.05) and
fine-tuning defaults to a fifth of the base rate, unless the user sets either."""
import argparse

import pytest

from evoprune.cli import _add_options, _settings
from evoprune.errors import EvopruneError
from evoprune.methods.dennc import WeightPruningConfig
from evoprune.methods.emofp.config import FilterSearchConfig


@pytest.mark.parametrize("cls", [FilterSearchConfig, WeightPruningConfig])
def test_defaults_follow_the_optimizer(cls):
    sgd, adam = cls().validate(), cls(optimizer="adam").validate()
    assert (sgd.lr, sgd.finetune_lr) == (0.05, 0.01)
    assert (adam.lr, adam.finetune_lr) == (0.001, pytest.approx(0.0002))


def test_settings_the_user_gave_win():
    cfg = FilterSearchConfig(optimizer="adam", lr=0.003).validate()
    assert (cfg.lr, cfg.finetune_lr) == (0.003, pytest.approx(0.0006))
    cfg = FilterSearchConfig(optimizer="adam", finetune_lr=0.0005).validate()
    assert (cfg.lr, cfg.finetune_lr) == (0.001, 0.0005)


def test_command_line_resolves_and_records_the_rates(tmp_path):
    parser = argparse.ArgumentParser()
    _add_options(parser, FilterSearchConfig)
    cfg = _settings(parser.parse_args(["--out", str(tmp_path / "r"), "--optimizer", "adam"]), FilterSearchConfig)
    assert cfg.to_dict()["lr"] == 0.001 and cfg.to_dict()["finetune_lr"] == pytest.approx(0.0002)
    assert "fine-tuning learning rate (default: a fifth of --lr)" in " ".join(parser.format_help().split())


def test_a_bad_rate_is_refused_in_one_sentence():
    with pytest.raises(EvopruneError, match=r"^lr must be positive and at most 10, got -0.1$"):
        FilterSearchConfig(lr=-0.1).validate()
    with pytest.raises(EvopruneError, match=r"^finetune_lr must be positive and at most 10, got 1e\+39$"):
        FilterSearchConfig(finetune_lr=1e39).validate()  # refused, not an overflow in the optimizer mid-run
