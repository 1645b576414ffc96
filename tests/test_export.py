"""A saved pruned model exported to ONNX runs in ONNX Runtime with PyTorch's outputs."""
import numpy as np
import pytest
import torch

from evoprune.cli import main
from evoprune.models import save_pruned
from evoprune.pruning import PrunableStructure, physically_prune

from conftest import top_filters

onnxruntime = pytest.importorskip("onnxruntime")


@pytest.fixture
def model_file(trained_lenet5, mini, tmp_path):
    structure = PrunableStructure(trained_lenet5, mini.input_shape)
    pruned = physically_prune(trained_lenet5, structure, top_filters(trained_lenet5, structure, [0.5, 0.7]))
    path = tmp_path / "pruned.pt"
    save_pruned(path, pruned, {"name": "lenet5", "kwargs": {}}, {"data": {"dataset": "mnist-mini"}})
    return path, pruned


def test_export_writes_onnx_that_matches_pytorch(model_file, mini, tmp_path, capsys):
    path, pruned = model_file
    out = tmp_path / "pruned.onnx"
    assert main(["export", str(path), "--onnx", str(out)]) == 0
    report = capsys.readouterr().out
    params = sum(p.numel() for p in pruned.parameters())
    assert f"{params:,} parameters" in report and "ONNX Runtime matches PyTorch on 64 test images" in report
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = mini.test.x[:100]  # another batch size than the export's: the batch dimension is free
    with torch.no_grad():
        np.testing.assert_allclose(session.run(None, {"images": x.numpy()})[0], pruned(x).numpy(), atol=1e-4)


def test_a_wrong_file_name_is_refused_and_nothing_written(model_file, tmp_path, capsys):
    path, _ = model_file
    assert main(["export", str(path), "--onnx", str(tmp_path / "pruned.txt")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err and not (tmp_path / "pruned.txt").exists()
    (tmp_path / "folder.onnx").mkdir()
    assert main(["export", str(path), "--onnx", str(tmp_path / "folder.onnx")]) == 2
    assert "is a directory; name a file" in capsys.readouterr().err and not any((tmp_path / "folder.onnx").iterdir())
    assert main(["export", str(path), "--onnx", str(path / "under" / "a.onnx")]) == 2
    assert f"{path} is a file, not a directory" in capsys.readouterr().err


def test_a_file_that_fails_the_check_is_refused_and_the_users_file_kept(model_file, tmp_path, capsys, monkeypatch):
    from evoprune import export

    path, _ = model_file
    out = tmp_path / "mine.onnx"
    out.write_bytes(b"the user's own file")
    monkeypatch.setattr(export, "TOLERANCE", -1.0)  # every export now differs from PyTorch by more
    assert main(["export", str(path), "--onnx", str(out)]) == 2
    assert "nothing was written" in capsys.readouterr().err
    assert out.read_bytes() == b"the user's own file" and sorted(tmp_path.iterdir()) == sorted([path, out])
