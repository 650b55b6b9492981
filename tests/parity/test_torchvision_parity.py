"""VGG16 and AlexNet: the Flax ports against torchvision, both conversion directions, at the presets' sizes."""

from __future__ import annotations

import pytest
import torch
import torchvision
from flax import nnx

from jax_impl.models import VGG16, AlexNet
from parity import torchvision as tv
from parity.convert import ConversionError, flax_to_torch, torch_params, torch_to_flax


def _assert_passed(records):
    assert records and all(r["passed"] for r in records), [r["detail"] for r in records if not r["passed"]]


@pytest.mark.parametrize("arch", [pytest.param("vgg16", marks=pytest.mark.slow), "alexnet"])  # VGG16: 20 s
def test_forward_at_the_cpu_presets_size_both_directions(arch, mnist):
    records = tv.forward(arch, mnist.test_images[:4], sizes=tv.SIZES[arch][:1])
    assert {r["check"] for r in records} == {f"forward ({side} init, {tv.SIZES[arch][0]} px)"
                                             for side in ("torch", "flax")}
    _assert_passed(records)


@pytest.mark.slow
@pytest.mark.parametrize("arch", tv.MODELS)
def test_forward_at_224_px_both_directions(arch, mnist):
    _assert_passed(tv.forward(arch, mnist.test_images[:4], sizes=(224,)))


@pytest.mark.parametrize("arch", [pytest.param("vgg16", marks=pytest.mark.slow), "alexnet"])  # VGG16: 30 s
def test_gradients_and_round_trip(arch, mnist):
    _assert_passed(tv.gradients(arch, mnist.test_images[:4], mnist.test_labels[:4]) + tv.round_trip(arch))


@pytest.mark.parametrize("classes", [1000, 3])  # (the 10-class head: every check above)
def test_torchvisions_own_alexnet_converts_both_ways_with_any_head(classes):
    torch.manual_seed(0)
    theirs = torchvision.models.alexnet(num_classes=classes)
    ours = AlexNet(num_classes=classes, rngs=nnx.Rngs(1))
    torch_to_flax(theirs, ours)
    back = torchvision.models.alexnet(num_classes=classes)
    flax_to_torch(ours, back)
    for key, value in torch_params(theirs).items():
        assert (torch_params(back)[key] == value).all(), key


def test_a_mismatched_pair_is_refused_naming_the_problem():
    with pytest.raises(ConversionError, match="not the PyTorch twin"):
        torch_to_flax(torchvision.models.alexnet(), nnx.eval_shape(lambda: VGG16(rngs=nnx.Rngs(0))))
    with pytest.raises(ConversionError, match="classifier"):
        torch_to_flax(torchvision.models.alexnet(num_classes=10), AlexNet(num_classes=1000, rngs=nnx.Rngs(0)))
