"""Compiled PyTorch's optimizer step at a learning rate of 0: the guard against PyTorch's 0 / -0."""

from __future__ import annotations

import torch

from torch_ref import compiled


def _adamw_with_a_zero_gradient():
    torch.manual_seed(0)
    zero, other = torch.nn.Parameter(torch.randn(8)), torch.nn.Parameter(torch.randn(8))
    opt = torch.optim.AdamW([zero, other], lr=torch.tensor(0.0), weight_decay=0.05)
    zero.grad, other.grad = torch.zeros(8), torch.randn(8)  # an attention key bias has an exactly-zero gradient
    return opt, zero, other


def test_a_step_at_learning_rate_zero_keeps_every_parameter_and_advances_the_state():
    """At lr 0 the guarded compiled step is what eager AdamW does: parameters unchanged (none turned NaN, as
    PyTorch's compiled AdamW turns a zero-gradient one: pytorch/pytorch#126514), moments and step advanced."""
    eager, e_zero, e_other = _adamw_with_a_zero_gradient()
    eager.step()
    opt, zero, other = _adamw_with_a_zero_gradient()
    before = (zero.detach().clone(), other.detach().clone())
    compiled.optimizer_step(opt, mode="default", zero_lr=lambda: True)()
    assert torch.equal(zero, before[0]) and torch.equal(other, before[1])
    for p, q in ((zero, e_zero), (other, e_other)):
        assert torch.equal(p, q)
        for key in ("exp_avg", "exp_avg_sq", "step"):
            torch.testing.assert_close(opt.state[p][key], eager.state[q][key], rtol=0, atol=1e-7)


def test_later_steps_follow_eager_adamw():
    """Once the learning rate is positive the same compiled step runs as it is, and follows eager AdamW."""
    eager, e_zero, e_other = _adamw_with_a_zero_gradient()
    opt, zero, other = _adamw_with_a_zero_gradient()
    step = compiled.optimizer_step(opt, mode="default", zero_lr=lambda: float(opt.param_groups[0]["lr"]) == 0)
    for lr in (0.0, 1e-2, 2e-2):
        for o in (eager, opt):
            o.param_groups[0]["lr"].fill_(lr)
        eager.step()
        step()
    torch.testing.assert_close(zero, e_zero, rtol=0, atol=1e-6)
    torch.testing.assert_close(other, e_other, rtol=0, atol=1e-6)
    assert torch.isfinite(zero).all()


class _WithAZeroGradient(torch.nn.Module):
    """A linear classifier with one more parameter whose gradient is exactly 0, as the ViT's attention key biases'
    come out on AVX2 CPUs."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(784, 10)
        self.shift = torch.nn.Parameter(torch.zeros(10))

    def forward(self, x):
        return self.fc(x.flatten(1)) + 0 * self.shift


def test_compiled_training_through_a_warm_up_from_zero_stays_finite(mnist):
    """fit with compiled PyTorch, AdamW and a warm-up whose first step has learning rate 0: every parameter finite
    (unguarded, the zero-gradient one turned NaN at that first step), as in eager PyTorch."""
    from mnist_common import TrainConfig
    from torch_ref import train

    config = TrainConfig(epochs=1, batch_size=64, optimizer="adamw", lr=1e-3, schedule="cosine", warmup_steps=2,
                         torch_compile="default")
    model = _WithAZeroGradient()
    train.fit(model, mnist.train_images[:256], mnist.train_labels[:256], config, progress=False)
    assert all(torch.isfinite(p).all() for p in model.parameters())
