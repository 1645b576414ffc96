"""Every kind of bad input is refused with one sentence naming the bad value, before any
training, with exit code 2 (CLI) or an EvopruneError (API), no traceback and no files left."""
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from evoprune.cli import main
from evoprune.data import DatasetSplits, TensorSplit
from evoprune.errors import EvopruneError
from evoprune.methods.emofp import FilterSearchConfig, run_filter_search
from evoprune.models import build_model

def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def mnist_dir(root: Path, train_images=None, train_labels=None, gz=True) -> Path:
    """A small data directory in the official MNIST layout, with parts replaced as asked."""
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 255, (60, 28, 28)),
              "train-labels-idx1-ubyte": np.arange(60) % 10,
              "t10k-images-idx3-ubyte": rng.integers(0, 255, (20, 28, 28)),
              "t10k-labels-idx1-ubyte": np.arange(20) % 10}
    if train_images is not None:
        arrays["train-images-idx3-ubyte"] = train_images
    if train_labels is not None:
        arrays["train-labels-idx1-ubyte"] = train_labels
    root.mkdir(parents=True, exist_ok=True)
    for stem, array in arrays.items():
        data = array if isinstance(array, bytes) else idx_bytes(np.asarray(array))
        if gz:
            (root / f"{stem}.gz").write_bytes(gzip.compress(data) if not isinstance(array, bytes) else data)
        else:
            (root / stem).write_bytes(data)
    return root


def truncated_gz(root: Path) -> Path:
    mnist_dir(root)
    path = root / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])
    return root


def toml(tmp: Path, text: str) -> str:
    path = tmp / "settings.toml"
    path.write_text(text)
    return str(path)


def finished_run(tmp: Path, broken: str, content: str) -> str:
    """A run directory whose ``broken`` file holds ``content``."""
    run = tmp / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"method": "emofp", "settings": {}}))
    for name in ("base.json", "pareto.csv", "finetuned.csv", "history.csv", "timings.json"):
        (run / name).write_text("{}" if name.endswith(".json") else "a,b\n1,2\n")
    (run / broken).write_text(content)
    return str(run)


class Evil:
    def __reduce__(self):
        return (print, ("executed",))


def evil_pickle(tmp: Path) -> str:
    path = tmp / "model.pt"
    torch.save({"format": "evoprune.pruned-model/1", "x": Evil()}, path)
    return str(path)


def wrong_content_model(tmp: Path) -> str:
    path = tmp / "model.pt"
    torch.save({"format": "evoprune.pruned-model/1", "arch": {"name": "lenet5", "kwargs": {}},
                "state_dict": {"0.weight": torch.zeros(3, 3)}, "meta": {}}, path)
    return str(path)


def plain_file(tmp: Path) -> Path:
    path = tmp / "a-file"
    path.write_text("not a directory")
    return path


def not_gzip(root: Path) -> Path:
    mnist_dir(root)
    (root / "train-images-idx3-ubyte.gz").write_bytes(b"plain text, not gzip")
    return root


FILTERS = ["filters", "--epochs", "1", "--generations", "1", "--pop-size", "4"]
MNIST = ["--dataset", "mnist", "--data-root"]

# (id, argv builder given a temporary directory, words the message must contain)
CLI_CASES = [
    ("negative seed", lambda t: [*FILTERS, "--seed", "-1"], "-1"),
    ("huge seed", lambda t: [*FILTERS, "--seed", "1e20"], "1e20"),
    ("seed beyond 2**32", lambda t: [*FILTERS, "--seed", str(2 ** 40)], str(2 ** 40)),
    ("max-drop above 1", lambda t: [*FILTERS, "--max-drop", "5"], "5"),
    ("negative max-drop", lambda t: [*FILTERS, "--max-drop", "-0.1"], "-0.1"),
    ("infinite lr", lambda t: [*FILTERS, "--lr", "inf"], "inf"),
    ("nan lr", lambda t: [*FILTERS, "--lr", "nan"], "nan"),
    ("lr past float32", lambda t: [*FILTERS, "--lr", "1e300"], "1e+300"),
    ("huge fine-tune lr", lambda t: [*FILTERS, "--finetune-lr", "1e39"], "1e+39"),
    ("huge distill temperature", lambda t: [*FILTERS, "--distill", "--distill-temperature", "1e300"], "1e+300"),
    ("zero epochs", lambda t: [*FILTERS, "--epochs", "0"], "0"),
    ("zero population", lambda t: [*FILTERS, "--pop-size", "0"], "0"),
    ("population of one", lambda t: [*FILTERS, "--pop-size", "1"], "at least 2 (a search compares networks), got 1"),
    ("unreachable Dask scheduler", lambda t: [*FILTERS, "--dask", "tcp://127.0.0.1:9"],
     "cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 5 s"),
    ("negative generations", lambda t: [*FILTERS, "--generations", "-3"], "-3"),
    ("zero select", lambda t: [*FILTERS, "--select", "0"], "0"),
    ("max-ratio above 1", lambda t: [*FILTERS, "--max-ratio", "1.5"], "1.5"),
    ("unknown model", lambda t: [*FILTERS, "--model", "resnet9000"], "resnet9000"),
    ("unknown data set", lambda t: [*FILTERS, "--dataset", "imagenet-zzz"], "imagenet-zzz"),
    ("unknown criterion", lambda t: [*FILTERS, "--criterion", "taylor-zzz"], "taylor-zzz"),
    ("bn-scale criterion without BatchNorm", lambda t: [*FILTERS, "--criterion", "bn-scale"],
     "'bn-scale' cannot score layer '0': it has no BatchNorm"),
    ("unknown objective", lambda t: [*FILTERS, "--objectives", "filters,energy"], "energy"),
    ("unknown optimizer", lambda t: [*FILTERS, "--optimizer", "lbfgs"], "lbfgs"),
    ("zero val size", lambda t: [*FILTERS, "--val-size", "0"], "0"),
    ("one validation image", lambda t: ["cluster", "--epochs", "1", "--val-size", "1"], "at least 10 images"),
    ("val size above the data", lambda t: [*FILTERS, "--val-size", "999999"], "999999"),
    ("screen above validation", lambda t: [*FILTERS, "--screen", "999999"], "999999"),
    ("bn-calibration above training", lambda t: [*FILTERS, "--bn-calibration", "100000000"], "100000000"),
    ("candidate-finetune above training", lambda t: [*FILTERS, "--candidate-finetune", "100000000"], "100000000"),
    ("distill weight above 1", lambda t: [*FILTERS, "--distill-weight", "2"], "2"),
    ("zero distill temperature", lambda t: [*FILTERS, "--distill-temperature", "0"], "0"),
    ("negative fine-tune lr", lambda t: [*FILTERS, "--finetune-lr", "-1"], "-1"),
    ("zero finalists", lambda t: [*FILTERS, "--finalists", "0"], "finalists"),
    ("negative uniform seeds", lambda t: [*FILTERS, "--uniform-seeds", "-1"], "-1"),
    ("zero race z", lambda t: [*FILTERS, "--race-z", "0"], "race_z"),
    ("race on a dask cluster", lambda t: [*FILTERS, "--race", "--dask", "local:2"], "local:2"),
    ("dask without workers", lambda t: [*FILTERS, "--dask", "local:0"], "local:0"),
    ("dask address without a port", lambda t: [*FILTERS, "--dask", "tcp://scheduler"], "tcp://scheduler"),
    ("out inside a file", lambda t: [*FILTERS, "--out", str(plain_file(t) / "run")], "a-file"),
    ("out under /proc", lambda t: [*FILTERS, "--out", "/proc/evoprune-run"], "/proc/evoprune-run"),
    ("cache dir under /proc", lambda t: [*FILTERS, "--cache-dir", "/proc/evoprune-cache"], "/proc/evoprune-cache"),
    ("missing data root", lambda t: [*FILTERS, *MNIST, str(t / "no-such-dir")], "no-such-dir"),
    ("truncated gzip", lambda t: [*FILTERS, *MNIST, str(truncated_gz(t / "d"))], "train-images-idx3-ubyte.gz"),
    ("plain file named .gz", lambda t: [*FILTERS, *MNIST, str(not_gzip(t / "d"))], "train-images-idx3-ubyte.gz"),
    ("1-D image file", lambda t: [*FILTERS, *MNIST, str(mnist_dir(t / "d", train_images=np.zeros(60)))], "1-D"),
    ("label beyond the classes", lambda t: [*FILTERS, *MNIST,
                                            str(mnist_dir(t / "d", train_labels=np.arange(60) % 13))], "12"),
    ("one-class labels", lambda t: [*FILTERS, *MNIST, str(mnist_dir(t / "d", train_labels=np.full(60, 3)))],
     "only one class (3)"),
    ("missing config file", lambda t: [*FILTERS, "--config", str(t / "none.toml")], "none.toml"),
    ("config not TOML", lambda t: [*FILTERS, "--config", toml(t, "seed = = 1")], "settings.toml"),
    ("config unknown key", lambda t: [*FILTERS, "--config", toml(t, "sede = 1")], "sede"),
    ("config seed not a number", lambda t: [*FILTERS, "--config", toml(t, 'seed = "abc"')], "abc"),
    ("config objectives a number", lambda t: [*FILTERS, "--config", toml(t, "objectives = 5")], "5"),
    ("config lr a string", lambda t: [*FILTERS, "--config", toml(t, 'lr = "x"')], "x"),
    ("config cache_dir a number", lambda t: [*FILTERS, "--config", toml(t, "cache_dir = 5")], "5"),
    ("config download a string", lambda t: [*FILTERS, "--config", toml(t, 'download = "no"')], "no"),
    ("config de_variant a number", lambda t: ["weights", "--config", toml(t, "de_variant = 5")], "5"),
    ("search-val-size above validation", lambda t: ["weights", "--epochs", "1", "--search-val-size", "999999"],
     "999999"),
    ("cluster ratio of 1", lambda t: ["cluster", "--epochs", "1", "--ratios", "0.5,1.0"], "1"),
    ("cluster ratio twice", lambda t: ["cluster", "--epochs", "1", "--ratios", "0.5,0.50"], "'0.50' twice"),
    ("summary of a truncated base.json", lambda t: ["summary", finished_run(t, "base.json", '{"val_acc')],
     "base.json"),
    ("summary of an empty finetuned.csv", lambda t: ["summary", finished_run(t, "finetuned.csv", "")],
     "finetuned.csv"),
    ("summary of no run", lambda t: ["summary", str(t)], "config.json"),
    ("summary of a base.json lacking its keys", lambda t: ["summary", finished_run(t, "base.json", '{"x": 1}')],
     "is damaged: it lacks"),
    ("summary of a config.json holding a list", lambda t: ["summary", finished_run(t, "config.json", "[1]")],
     "no JSON object"),
    ("evaluate a missing file", lambda t: ["evaluate", str(t / "none.pt")], "none.pt"),
    ("evaluate a malicious pickle", lambda t: ["evaluate", evil_pickle(t)], "model.pt"),
    ("evaluate a model of wrong shapes", lambda t: ["evaluate", wrong_content_model(t)], "model.pt"),
    ("resume a directory without a run", lambda t: ["resume", str(t)], "config.json"),
    ("a device this machine lacks", lambda t: ["filters", "--device", "cuda:999"], "'cuda:999' is not available"),
]


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's own refusals
        return e.code


@pytest.mark.parametrize("build, words", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli_refuses_bad_input_in_one_sentence(build, words, tmp_path, capsys):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    argv = build(inputs)
    out = tmp_path / "out"
    if argv[0] in ("filters", "weights", "cluster", "channels") and "--out" not in argv:
        own_cache = "--cache-dir" in argv or "--config" in argv
        argv += ["--out", str(out)] + ([] if own_cache else ["--cache-dir", "none"])
    assert run_cli(argv) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("evoprune"), captured.err
    assert words in lines[0] and "Traceback" not in captured.err and "executed" not in captured.out
    assert not out.exists()  # nothing left behind


def splits(train_x=None, train_y=None, val=None, num_classes=10) -> DatasetSplits:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 1, 28, 28, generator=gen)
    y = torch.arange(40) % 10
    train = TensorSplit(x if train_x is None else train_x, y if train_y is None else train_y)
    return DatasetSplits("user", train, val if val is not None else TensorSplit(x[:20], y[:20]), TensorSplit(x[:20], y[:20]), num_classes)


class FewOutputs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.fc = torch.nn.Linear(4, 5)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


nan_images = torch.zeros(40, 1, 28, 28)
nan_images[7, 0, 3, 3] = float("nan")

API_CASES = [
    ("label beyond the outputs", lambda: {"data": splits(train_y=torch.arange(40) % 12)}, "11"),
    ("float labels", lambda: {"data": splits(train_y=(torch.arange(40) % 10).float())}, "float32"),
    ("empty split", lambda: {"data": splits(val=TensorSplit(torch.zeros(0, 1, 28, 28),
                                                            torch.zeros(0, dtype=torch.long)))}, "0 images"),
    ("NaN inputs", lambda: {"data": splits(train_x=nan_images)}, "image 7"),
    ("one-class labels", lambda: {"data": splits(train_y=torch.full((40,), 4))}, "only one class (4)"),
    ("uint8 NHWC images", lambda: {"data": splits(train_x=torch.zeros(40, 28, 28, 1, dtype=torch.uint8))},
     "torch.uint8"),
    ("wrong input channels", lambda: {"data": splits(train_x=torch.zeros(40, 3, 28, 28))}, "(3, 28, 28)"),
    ("wrong input size", lambda: {"data": DatasetSplits("user", *[TensorSplit(torch.zeros(40, 1, 8, 8),
                                                                              torch.arange(40) % 10)] * 3, 10)},
     "(1, 8, 8)"),
    ("a DataLoader instead of splits", lambda: {"data": torch.utils.data.DataLoader(range(4))}, "DataLoader"),
    ("a model with fewer outputs than classes", lambda: {"data": splits(), "model": FewOutputs()}, "5 outputs"),
    ("an untrained given model", lambda: {"data": splits(), "model": build_model("lenet5")}, "validation accuracy"),
]


@pytest.mark.parametrize("build, words", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_api_refuses_bad_input_with_an_evoprune_error(build, words, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(EvopruneError) as e:
        run_filter_search(FilterSearchConfig(epochs=1, generations=1, pop_size=4, cache_dir=None), out, **build())
    message = str(e.value)
    assert words in message and "\n" not in message
    assert not out.exists()


@pytest.mark.parametrize("field, value", [("max_drop", float("inf")), ("max_drop", float("nan")),
                                          ("seed", -5), ("pop_size", 2.5), ("objectives", ("filters",))])
def test_api_settings_are_refused_before_any_work(field, value, tmp_path):
    with pytest.raises(EvopruneError) as e:
        run_filter_search(FilterSearchConfig(**{field: value}), tmp_path / "out")
    assert str(value).strip("()',") in str(e.value) or field in str(e.value)
    assert not (tmp_path / "out").exists()


def test_a_diverging_base_model_is_refused_and_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli(["filters", "--epochs", "1", "--lr", "10", "--out", str(out), "--cache-dir", "none"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("evoprune: error: the base model") and "--lr" in err
    assert not out.exists()


@pytest.mark.parametrize("argv, words", [
    (["cluster", "--ratios", "0.5", "--finetune-lr", "1"], "diverged"),  # found only once fine-tuning
    (["weights", "--pop-size", "4", "--generations", "1", "--sweep-steps", "4", "--max-drop", "0.0001"],
     "no candidate of round 1"),  # found only once searching
])
def test_settings_refused_once_computing_leave_nothing_behind(tmp_path, capsys, argv, words):
    out = tmp_path / "out"
    assert run_cli([*argv, "--epochs", "1", "--out", str(out), "--cache-dir", "none"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("evoprune: error:") and words in err
    assert not out.exists()  # no unfinished run that `resume` would only fail again on
    out.mkdir()
    (out / "notes.txt").write_text("mine")  # a directory the user filled is never emptied
    assert run_cli([*argv, "--epochs", "1", "--out", str(out), "--cache-dir", "none"]) == 2
    assert (out / "notes.txt").read_text() == "mine"
