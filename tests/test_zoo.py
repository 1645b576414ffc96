"""Does it prune my model? Zoo models are pruned physically and checked against the network the
search scores, or refused in one sentence before any compute; the whole zoo walk (marked ``zoo``,
run by CI) must give the committed coverage table."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from evoprune.cli import main
from evoprune.errors import EvopruneError
from evoprune.fitness.probe import checked_structure
from evoprune.models import build_model

HANGS = {"timm:rexnet_100"}
EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def zoo_script():
    spec = importlib.util.spec_from_file_location("zoo_coverage", EXPERIMENTS / "zoo_coverage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["torchvision:resnet18", "timm:convnext_atto", "timm:efficientnet_b0"])
def test_a_zoo_model_prunes_to_the_network_the_search_scores(name):
    model = build_model(name, num_classes=10, in_channels=3)
    structure = checked_structure(model, (3, 64, 64))  # raises if the pruned network differs
    assert len(structure.layers) > 1


@pytest.mark.parametrize("name, says", [
    ("torchvision:shufflenet_v2_x0_5", "Torch-Pruning cannot trace which layers of this model are coupled"),
    ("timm:cspresnet50", "a pruned network of this model does not run"),
    ("timm:ghostnet_100", "pruning left blocks"),
])
def test_a_model_that_does_not_prune_is_refused_in_one_sentence(name, says):
    with pytest.raises(EvopruneError, match=says) as refused:
        checked_structure(build_model(name, num_classes=10, in_channels=3), (3, 64, 64))
    assert "\n" not in str(refused.value)


def test_the_cli_refuses_it_before_training(tmp_path, capsys):
    code = main(["filters", "--model", "timm:ghostnet_100", "--out", str(tmp_path / "run"), "--epochs", "1",
                 "--cache-dir", "none"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "pruning left" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.zoo
def test_the_zoo_walk_gives_the_committed_table(tmp_path):
    zoo = zoo_script()
    # as a script: its worker processes import it by name
    subprocess.run([sys.executable, str(EXPERIMENTS / "zoo_coverage.py"), "--results", str(tmp_path)], check=True,
                   capture_output=True, timeout=3600)
    walked = pd.read_csv(tmp_path / "zoo_coverage.csv")
    committed = pd.read_csv(EXPERIMENTS / "results" / "zoo_coverage.csv")
    assert list(walked["model"]) == list(committed["model"])
    assert list(walked["outcome"]) == list(committed["outcome"])
    assert not walked["outcome"].str.startswith("FAILS").any()  # every model prunes or is refused in a sentence
    # but for those whose dependency grouping in Torch-Pruning does not end (a defect, listed in the table)
    assert set(walked.loc[walked["outcome"].str.startswith(zoo.UNFINISHED), "model"]) <= HANGS
    assert (tmp_path / "zoo_coverage.md").read_text() == (EXPERIMENTS / "results" / "zoo_coverage.md").read_text()
