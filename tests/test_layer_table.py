"""layer_costs.csv and `evoprune summary`: per convolution and linear layer, output channels, parameters
and FLOPs of the base model and of every saved pruned model."""
import pandas as pd
import torch

from evoprune.cli import main
from evoprune.models import load_pruned


def test_a_filter_run_tabulates_every_layer_of_every_saved_model(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["filters", "--out", str(out), "--epochs", "1", "--pop-size", "6", "--generations", "2",
                 "--select", "2", "--finetune-epochs", "1", "--max-drop", "0.3", "--cache-dir", "none"]) == 0
    table = pd.read_csv(out / "layer_costs.csv", dtype={"layer": str})
    saved = sorted(p.stem for p in (out / "models").glob("*.pt"))
    assert sorted(set(table["model"])) == sorted(["base", *saved])
    base = table[table["model"] == "base"].set_index("layer")
    assert base.loc["0", "channels"] == 20 and base.loc["2", "channels"] == 50  # LeNet-5's two convolutions
    assert base.loc["0", "params"] == 20 * 25 + 20 and base.loc["0", "flops"] == 2 * 20 * 25 * 24 * 24
    for name in saved:  # each pruned model's rows are what the saved network has
        model = load_pruned(out / "models" / f"{name}.pt")
        rows = table[table["model"] == name].set_index("layer")
        for layer, module in model.named_modules():
            if isinstance(module, torch.nn.Conv2d):
                assert rows.loc[layer, "channels"] == module.out_channels
                assert rows.loc[layer, "params"] == sum(p.numel() for p in module.parameters())
    capsys.readouterr()
    assert main(["summary", str(out)]) == 0
    text = capsys.readouterr().out
    assert "channels per pruned layer" in text and "base" in text.split("channels per pruned layer")[1]
