"""Knowledge distillation in fine-tuning: Hinton et al.'s T^2-scaled soft-target loss."""
import copy

import pytest
import torch
import torch.nn.functional as F

from evoprune.data import TensorSplit
from evoprune.errors import EvopruneError
from evoprune.train import TrainConfig, distillation_loss, fit


def test_loss_is_zero_when_student_equals_teacher():
    logits = torch.randn(32, 10)
    assert distillation_loss(logits, logits.clone(), 4.0).item() == pytest.approx(0.0, abs=1e-6)
    assert distillation_loss(logits + 1.0, logits, 4.0).item() == pytest.approx(0.0, abs=1e-6)  # shift-invariant


def test_loss_is_t_squared_times_the_kl_of_the_softened_distributions():
    torch.manual_seed(0)
    s, t, T = torch.randn(16, 10), torch.randn(16, 10), 3.0
    p, q = F.softmax(t / T, 1), F.softmax(s / T, 1)
    expected = T ** 2 * (p * (p.log() - q.log())).sum(1).mean()
    assert distillation_loss(s, t, T).item() == pytest.approx(expected.item(), rel=1e-5)


def test_t_squared_keeps_the_gradient_scale_independent_of_the_temperature():
    torch.manual_seed(0)
    t = torch.randn(64, 10)
    s0 = t + 0.1 * torch.randn(64, 10)
    norms = []
    for T in (10.0, 20.0, 40.0):
        s = s0.clone().requires_grad_(True)
        distillation_loss(s, t, T).backward()
        norms.append(s.grad.norm().item())
    assert norms[1] == pytest.approx(norms[0], rel=0.05) and norms[2] == pytest.approx(norms[0], rel=0.05)


def test_a_student_equal_to_its_teacher_learns_nothing_from_pure_distillation():
    torch.manual_seed(0)
    teacher = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    student = copy.deepcopy(teacher)
    data = TensorSplit(torch.randn(64, 1, 4, 4), torch.randint(0, 3, (64,)))
    losses = fit(student, data, TrainConfig(epochs=1, lr=0.1, weight_decay=0.0, distill_weight=1.0), teacher=teacher)
    assert losses[0] == pytest.approx(0.0, abs=1e-6)
    for a, b in zip(student.state_dict().values(), teacher.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_bad_distillation_settings_are_refused():
    with pytest.raises(EvopruneError, match="distillation needs 0 <= weight <= 1 and temperature > 0"):
        TrainConfig(distill_weight=1.5)
