import pytest
import torch

from evoprune.data import load_dataset
from evoprune.models import build_model
from evoprune.pruning import RatioSelection, kept_tensors
from evoprune.train import TrainConfig, fit


@pytest.fixture(scope="session")
def mini():
    return load_dataset("mnist-mini")


def trained_one_epoch(name, data):
    torch.manual_seed(0)
    model = build_model(name)
    fit(model, data.train, TrainConfig(epochs=1, seed=0))
    return model.eval()


@pytest.fixture(scope="session")
def trained_lenet5(mini):
    """LeNet-5 after one epoch on mnist-mini: ~95 % accurate, enough to prune meaningfully."""
    return trained_one_epoch("lenet5", mini)


def randomise_batchnorm(model):
    """Give BatchNorm layers non-trivial statistics so slicing mistakes show in the outputs."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=gen))
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen))
    return model.eval()


@pytest.fixture(scope="session")
def trained_lenet300(mini):
    """LeNet-300-100 after one epoch on mnist-mini (~89 % accurate): dense, ready to prune."""
    return trained_one_epoch("lenet300", mini)


def top_filters(model, structure, ratios, criterion="l1"):
    """The filters EMOFP's decoding keeps for per-layer pruning ``ratios``, as index tensors."""
    return kept_tensors(RatioSelection(criterion).bind(model, structure).keep(ratios))


CIFAR_SUBSET = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-subset" / \
    "cifar10_subset.npz"


@pytest.fixture(scope="session")
def cifar_arrays():
    """The real 5,000-image CIFAR-10 subset that lies beside the project (uint8, channels last)."""
    import numpy as np

    if not CIFAR_SUBSET.is_file():
        pytest.skip(f"the CIFAR-10 subset is not at {CIFAR_SUBSET}")
    with np.load(CIFAR_SUBSET) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture
def small_cifar_npz(tmp_path, cifar_arrays):
    """A smaller .npz of real CIFAR-10 images (600 train, 200 test), for fast end-to-end runs."""
    import numpy as np

    path = tmp_path / "cifar_small.npz"
    np.savez(path, x_train=cifar_arrays["x_train"][:600], y_train=cifar_arrays["y_train"][:600],
             x_test=cifar_arrays["x_test"][:200], y_test=cifar_arrays["y_test"][:200])
    return path
