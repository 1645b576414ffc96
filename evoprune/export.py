"""Export of a saved (physically pruned or sparse) model to ONNX, checked against PyTorch."""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from .data.splits import TensorSplit
from .errors import EvopruneError
from .fitness.measure import count_params
from .io import atomic_write

TOLERANCE = 1e-4  # largest |difference| of logits between ONNX Runtime and PyTorch accepted


def check_onnx_name(out: Path | str) -> Path:
    out = Path(out)
    if out.suffix != ".onnx":
        raise EvopruneError(f"the ONNX file name {out} must end in .onnx")
    if out.is_dir():
        raise EvopruneError(f"the ONNX file {out} is a directory; name a file")
    parent = next((p for p in out.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise EvopruneError(f"the ONNX file {out} cannot be made: {parent} is a file, not a directory")
    return out


def export_onnx(model: nn.Module, out: Path | str, images: TensorSplit) -> str:
    """Write ``model`` to ``out`` as ONNX (batch size free), run the exported file with ONNX Runtime
    on ``images`` when it is installed and compare its logits with PyTorch's; one line of report."""
    try:
        import onnx  # noqa: F401  torch's exporter needs it
    except ImportError:
        raise EvopruneError("ONNX export needs the onnx package: pip install 'evoprune[export]'") from None
    out = check_onnx_name(out)
    model = model.eval()
    x = images.x[:64]
    checked: dict = {}

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():  # the TorchScript-based exporter is deprecated but needs no onnxscript
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), str(tmp), dynamo=False, input_names=["images"], output_names=["logits"],
                              dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
        checked.update(_compare(tmp, model, x))  # before the file takes ``out``'s place: a file already there stays

    atomic_write(out, write)
    report = f"{out}: {out.stat().st_size:,} bytes, {count_params(model):,} parameters"
    if not checked:
        return report + "; not checked (install onnxruntime to compare it with PyTorch)"
    return report + (f"; ONNX Runtime matches PyTorch on {len(x)} test images (max |logit difference| "
                     f"{checked['difference']:.1e}, same class for {checked['agree']:.0%})")


def _compare(path: Path, model: nn.Module, x: torch.Tensor) -> dict:
    """ONNX Runtime's logits of the file at ``path`` against PyTorch's (empty if onnxruntime is not
    installed); refuses the file if they differ by more than ``TOLERANCE``."""
    try:
        import onnxruntime
    except ImportError:
        return {}
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
    with torch.no_grad():
        expected = model(x)
    difference = float((got - expected).abs().max())
    if not difference <= TOLERANCE:
        raise EvopruneError(f"the exported model's logits differ from PyTorch's by {difference:.2e} (more than "
                            f"{TOLERANCE:g}); nothing was written")
    return {"difference": difference, "agree": float((got.argmax(1) == expected.argmax(1)).float().mean())}
