"""Size and speed of a network: parameters, FLOPs (torch.utils.flop_counter), latency on its device."""
from __future__ import annotations

import io
import warnings

import torch
from torch import nn
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode

from ..devices import device_of, synchronize
from ..scoring import as_input


def count_params(model: nn.Module, state: dict[str, torch.Tensor] | None = None) -> int:
    """Parameters of ``model``, or of ``state`` (a sliced state dict of its architecture)."""
    if state is None:
        return sum(p.numel() for p in model.parameters())
    names = {n for n, _ in model.named_parameters()}
    return sum(t.numel() for k, t in state.items() if k in names)


def count_flops(model: nn.Module, input_shape: tuple[int, ...], state: dict[str, torch.Tensor] | None = None) -> int:
    """FLOPs of one forward pass on one input (a multiply-add counts as two)."""
    x = torch.zeros(1, *input_shape, device=device_of(model))
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model.eval()
        model(x) if state is None else functional_call(model, state, (x,))
    return int(counter.get_total_flops())


def layer_costs(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, tuple[int, int, int]]:
    """Per convolution and linear layer: output channels, parameters and FLOPs of one forward pass
    on one input (torch's counter, as ``count_flops``)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model.eval()
        model(torch.zeros(1, *input_shape, device=device_of(model)))
    flops = {name.partition(".")[2]: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    return {name: (m.out_channels if isinstance(m, nn.Conv2d) else m.out_features,
                   sum(p.numel() for p in m.parameters(recurse=False)), int(flops.get(name, 0)))
            for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def latency_ms(model: nn.Module, input_shape: tuple[int, ...], batch_size: int = 256, min_run_time: float = 1.0,
               state: dict[str, torch.Tensor] | None = None) -> float:
    """Median wall time of one forward pass over a batch on ``model``'s device, in milliseconds; of
    ``model`` run with ``state`` (a sliced state dict of its architecture) if given."""
    device = device_of(model)
    x = as_input(torch.randn(batch_size, *input_shape, device=device))
    model.eval()

    def forward():
        with torch.inference_mode():
            model(x) if state is None else functional_call(model, state, (x,))
        synchronize(device)  # the timer waits for CUDA's queued work, not for Apple's
    return _median_ms(forward, min_run_time)


def onnx_latency_ms(model: nn.Module, input_shape: tuple[int, ...], batch_size: int = 64,
                    min_run_time: float = 0.2) -> float:
    """Median wall time of one forward pass over a batch in ONNX Runtime on the CPU (graph optimisations
    on, torch's thread count), of ``model`` exported in memory as ``evoprune export`` exports it."""
    import onnxruntime

    x = torch.randn(batch_size, *input_shape)
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript-based exporter is deprecated but needs no onnxscript
        warnings.simplefilter("ignore")
        torch.onnx.export(model.cpu().eval(), (x,), buffer, dynamo=False, input_names=["images"],
                          output_names=["logits"])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    feed = {"images": x.numpy()}
    return _median_ms(lambda: session.run(None, feed), min_run_time)


def _median_ms(run, min_run_time: float) -> float:
    """Median time of ``run()`` in milliseconds, by ``torch.utils.benchmark`` (it warms up, runs
    with torch's thread count and waits for a GPU's queued work)."""
    import torch.utils.benchmark as benchmark  # imported when used: it loads torch's C++-extension builder

    timer = benchmark.Timer(stmt="run()", globals={"run": run}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3
