"""fit() trains in channels_last (faster on the CPU) but must not run oneDNN's NHWC convolution
backward where it is faulty: for 1x1 stride-2 convs with fewer than 8 input channels (1 included) its
AVX2 kernel corrupts the heap, hangs or returns wrong weight gradients. Each case runs in a subprocess because the
failure can kill the interpreter."""
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

CODE = textwrap.dedent("""
    import copy, json, sys
    import torch
    import torch.nn.functional as F
    from torch import nn
    from evoprune.data.splits import TensorSplit
    from evoprune.train import TrainConfig, fit

    setup = sys.argv[1]
    torch.manual_seed(0)
    channels = {"two_channel": 2, "eight_channel": 8}.get(setup, 1)
    front = [] if channels > 1 or setup == "one_channel" else [nn.Conv2d(1, 2, 3, padding=1)]
    first = channels if channels > 1 or setup == "one_channel" else 2
    model = nn.Sequential(*front, nn.Conv2d(first, 64, 1, 2), nn.Flatten(), nn.Linear(64 * 8 * 8, 10))
    x = torch.randn(64, channels, 16, 16)
    if setup == "channels_last_model":  # weights left in channels_last by earlier code
        model = model.to(memory_format=torch.channels_last)
    if setup == "channels_last_gray":  # 1-channel images with NHWC strides
        x = torch.randn(64, 16, 16, channels).permute(0, 3, 1, 2)
    data = TensorSplit(x, torch.randint(0, 10, (64,)))

    reference = copy.deepcopy(model).double()
    F.cross_entropy(reference(x.double()), data.y).backward()
    grads = {}
    def keep_grads(step):
        grads.update({n: p.grad.double().clone() for n, p in model.named_parameters()})
    # one step over the whole batch: its gradient does not depend on the shuffling order
    fit(model, data, TrainConfig(epochs=1, batch_size=64, lr=0.01, weight_decay=0.0), after_step=keep_grads)

    errors = {n: float((grads[n] - p.grad).abs().max() / p.grad.abs().max())
              for n, p in reference.named_parameters()}
    finite = all(bool(torch.isfinite(p).all()) for p in model.parameters())
    print(json.dumps({"errors": errors, "finite": finite}))
""")


@pytest.mark.parametrize("setup, threads", [("two_channel", 1), ("two_channel", 2), ("channels_last_model", 1),
                                            ("channels_last_gray", 1), ("one_channel", 1), ("one_channel", 2),
                                            ("eight_channel", 1), ("eight_channel", 2)])
def test_fit_survives_and_matches_float64_gradients_with_few_channel_strided_1x1_convs(setup, threads):
    # Force oneDNN's AVX2 kernels (the faulty ones) even on AVX-512 machines. With one thread the
    # faulty backward crashes or hangs; with two it often returns wrong weight gradients instead.
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2", OMP_NUM_THREADS=str(threads))
    try:
        run = subprocess.run([sys.executable, "-c", CODE, setup], env=env, capture_output=True,
                             text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"fit hung ({setup}, {threads} threads)")
    assert run.returncode == 0, f"fit died with exit code {run.returncode}: {run.stderr[-2000:]}"
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["finite"]
    assert max(result["errors"].values()) < 1e-4, result["errors"]


@pytest.mark.parametrize("name", ["resnet20", "mobilenetv2-cifar-0.5", "lenet5"])
def test_networks_without_the_faulty_shape_train_in_channels_last(name):
    from evoprune.models import build_model
    from evoprune.train import training_layout

    layout = training_layout(build_model(name, num_classes=10, in_channels=1))
    for shape in [(8, 3, 3, 3), (8, 1, 3, 3), (128, 1, 28, 28)]:  # dense and depthwise weights, gray images
        assert layout(torch.zeros(shape)).stride()[1] == 1  # NHWC strides, even where a dim has size 1


def test_a_network_with_the_faulty_shape_trains_in_nchw():
    from torch import nn
    from evoprune.train import training_layout

    model = nn.Sequential(nn.Conv2d(1, 5, 3), nn.Conv2d(5, 16, 1, stride=2))
    assert training_layout(model)(torch.zeros(8, 3, 3, 3).to(memory_format=torch.channels_last)).is_contiguous()
