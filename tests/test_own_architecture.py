"""The user's own architecture from the command line (--model FILE.py:NAME or MODULE:NAME): a run
end to end, the commands that rebuild it, and a run directory that can never make them import code."""
import json
import shutil

import pytest
import torch

from evoprune.cli import main
from evoprune.errors import EvopruneError
from evoprune.methods import resume
from evoprune.methods.emofp import FilterSearchConfig, run_filter_search
from evoprune.models import user_code
from evoprune.models.registry import build_model, trust_named_code

NETS = '''
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, num_classes=10, in_channels=3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(16, num_classes)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def tiny(num_classes):  # a factory that takes only some of the arguments
    return TinyNet(num_classes, in_channels=1)


def not_a_model(**kwargs):
    return 42
'''
MOST_ACCURATE = ["--by", "max-params", "--value", "1000000000"]  # not the run's own pick: fine-tuned anew
TINY = ["--epochs", "1", "--pop-size", "6", "--generations", "2", "--select", "1", "--finetune-epochs", "1",
        "--max-drop", "0.3", "--cache-dir", "none"]


@pytest.fixture
def forget(monkeypatch):
    """A new process: nothing the user named before is trusted."""
    monkeypatch.setattr(user_code, "_TRUSTED", {})


@pytest.fixture
def made(tmp_path_factory):
    """A finished run with --model nets.py:TinyNet (a few seconds), and its spec."""
    root = tmp_path_factory.mktemp("own")
    (root / "nets.py").write_text(NETS)
    spec = f"{root / 'nets.py'}:TinyNet"
    assert main(["filters", "--model", spec, "--out", str(root / "run"), *TINY]) == 0
    return root / "run", spec


def test_a_run_with_the_users_own_class_records_where_its_code_was(made):
    run, spec = made
    arch = json.loads((run / "config.json").read_text())["arch"]
    assert arch["name"] == spec and arch["kwargs"] == {"num_classes": 10, "in_channels": 1}
    assert len(arch["code_sha256"]) == 64
    assert (run / "pareto.csv").is_file() and list((run / "models").glob("pruned_*.pt"))


def test_pick_and_evaluate_import_the_code_only_when_the_user_names_it(made, forget, capsys):
    run, spec = made
    assert main(["pick", str(run), *MOST_ACCURATE]) == 2
    said = capsys.readouterr().err
    assert "your own code" in said and "--model" in said and "Traceback" not in said
    assert main(["pick", str(run), *MOST_ACCURATE, "--model", spec]) == 0
    model_file = str(next((run / "models").glob("pruned_*.pt")))
    user_code._TRUSTED.clear()  # a new command
    assert main(["evaluate", model_file]) == 2
    assert main(["evaluate", model_file, "--model", spec]) == 0
    assert "test accuracy" in capsys.readouterr().out


def test_export_rebuilds_the_users_network(made, forget, tmp_path):
    pytest.importorskip("onnx")
    run, spec = made
    model_file = str(next((run / "models").glob("pruned_*.pt")))
    assert main(["export", model_file, "--onnx", str(tmp_path / "m.onnx"), "--model", spec]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 0


def test_the_same_code_elsewhere_is_accepted_and_changed_code_refused(made, forget, tmp_path, capsys):
    run, spec = made
    model_file = str(next((run / "models").glob("pruned_*.pt")))
    moved = tmp_path / "copy_of_nets.py"
    shutil.copy(spec.rpartition(":")[0], moved)
    assert main(["evaluate", model_file, "--model", f"{moved}:TinyNet"]) == 0
    moved.write_text(NETS.replace("nn.ReLU()", "nn.GELU()"))
    user_code._TRUSTED.clear()
    assert main(["evaluate", model_file, "--model", f"{moved}:TinyNet"]) == 2
    assert "differs from the code" in capsys.readouterr().err


def test_a_run_directory_never_makes_a_command_import_code(made, forget, tmp_path):
    run, _ = made
    planted = tmp_path / "planted"
    shutil.copytree(run, planted)
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').write('x')\nfrom torch.nn import Linear as TinyNet\n")
    config = json.loads((planted / "config.json").read_text())
    config["arch"]["name"] = f"{evil}:TinyNet"
    (planted / "config.json").write_text(json.dumps(config))
    for blob_file in [planted / "base_model.pt", *(planted / "models").glob("*.pt")]:
        blob = torch.load(blob_file, weights_only=True)
        blob["arch"]["name"] = f"{evil}:TinyNet"
        torch.save(blob, blob_file)
    assert main(["pick", str(planted), *MOST_ACCURATE]) == 2
    assert main(["evaluate", str(next((planted / "models").glob("pruned_*.pt")))]) == 2
    assert main(["summary", str(planted)]) == 0
    assert not marker.exists()


def test_an_interrupted_run_resumes_with_its_code_named_again(tmp_path, monkeypatch, capsys):
    (tmp_path / "nets.py").write_text(NETS)
    monkeypatch.chdir(tmp_path)
    cfg = FilterSearchConfig(model="nets.py:tiny", epochs=1, pop_size=6, generations=3, select=1, finetune_epochs=1,
                             max_drop=0.3, cache_dir=None)

    def interrupt(algorithm):
        if algorithm.n_gen == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_filter_search(cfg, tmp_path / "run", callback=interrupt)
    user_code._TRUSTED.clear()
    with pytest.raises(EvopruneError, match="your own code"):
        resume(tmp_path / "run")
    assert main(["resume", str(tmp_path / "run"), "--model", "lenet5"]) == 2
    assert "is not such a name" in capsys.readouterr().err
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(tmp_path / "nets.py", elsewhere / "nets.py")
    monkeypatch.chdir(elsewhere)  # the recorded relative name no longer points at the code
    assert main(["resume", str(tmp_path / "run"), "--model", "nets.py:tiny"]) == 0
    assert (tmp_path / "run" / "pareto.csv").is_file()


def test_a_module_on_the_path_is_named_as_module_colon_name(tmp_path, monkeypatch):
    (tmp_path / "my_nets.py").write_text(NETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    trust_named_code("my_nets:TinyNet")
    model = build_model("my_nets:TinyNet", num_classes=7, in_channels=1)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 7)


@pytest.mark.parametrize("code, name, sentence", [
    (None, "TinyNet", "there is no file"),
    ("raise ImportError('needs timm 9')", "TinyNet", "importing .* failed: ImportError: needs timm 9"),
    (NETS, "Missing", "defines no class or function 'Missing'"),
    (NETS, "not_a_model", "returned a int, not a torch.nn.Module"),
])
def test_code_that_cannot_give_a_network_is_refused_in_one_sentence(tmp_path, capsys, code, name, sentence):
    nets = tmp_path / "nets.py"
    if code is not None:
        nets.write_text(code)
    assert main(["filters", "--model", f"{nets}:{name}", "--out", str(tmp_path / "run"), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert __import__("re").search(sentence, err), err
    assert not (tmp_path / "run").exists()
