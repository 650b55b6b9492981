"""VGG16 and AlexNet on MNIST: input adaptation, size limits, one fine-tuning step each."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision

from mnist_common import TrainConfig
from torch_ref import train
from torch_ref.finetune import classifiers


@pytest.mark.parametrize("arch,size", [("vgg16", 32), ("alexnet", 63)])
def test_one_finetuning_step_at_the_minimum_size(mnist, arch, size):
    torch.manual_seed(0)
    model = classifiers.build(arch, weights="none", image_size=size)
    assert model.net.classifier[-1].out_features == 10
    before = {k: v.clone() for k, v in model.named_parameters()}
    fit = train.fit(model, mnist.train_images[:8], mnist.train_labels[:8],
                    TrainConfig(batch_size=8, optimizer="sgd", lr=0.01), progress=False)
    assert math.isfinite(fit.train_loss)
    assert all(not torch.equal(p, before[k]) for k, p in model.named_parameters()), "every layer trains"
    logits = train.predict(model, mnist.test_images[:3], batch_size=3)
    assert logits.shape == (3, 10) and np.isfinite(logits).all()


@pytest.mark.parametrize("arch,size", [("vgg16", 31), ("alexnet", 62)])
def test_below_the_minimum_size_is_a_clear_error(arch, size):
    with pytest.raises(ValueError, match=f"{arch} needs --image-size >= {size + 1} px, got {size}"):
        classifiers.build(arch, weights="none", image_size=size)


def test_frozen_features_stay_put_while_the_classifier_trains(mnist):
    torch.manual_seed(0)
    model = classifiers.build("alexnet", weights="none", image_size=63, freeze_features=True)
    features = {k: v.clone() for k, v in model.net.features.state_dict().items()}
    head = model.net.classifier[-1].weight.clone()
    train.fit(model, mnist.train_images[:8], mnist.train_labels[:8], TrainConfig(batch_size=8), progress=False)
    for key, value in model.net.features.state_dict().items():
        assert torch.equal(value, features[key]), key
    assert not torch.equal(model.net.classifier[-1].weight, head)


def test_input_is_resized_grey_to_rgb_and_normalised_as_the_weights_say(mnist):
    model = classifiers.build("alexnet", weights="none", image_size=70)
    meta = torchvision.models.AlexNet_Weights.IMAGENET1K_V1.transforms()
    assert model.mean == pytest.approx(meta.mean) and model.std == pytest.approx(meta.std)
    seen = {}

    def keep_input(module, inputs, output):
        seen["x"] = inputs[0]  # returns None: the output stays as it is

    model.net.features.register_forward_hook(keep_input)
    x = train.preprocess(mnist.test_images[:2], torch.device("cpu"))  # [2, 1, 28, 28], MNIST-normalised
    with torch.no_grad():
        model.eval()(x)
    assert seen["x"].shape == (2, 3, 70, 70)
    assert not torch.equal(seen["x"][:, 0], seen["x"][:, 1])  # per-channel ImageNet statistics differ
    std, mean = (torch.tensor(v).view(1, 3, 1, 1) for v in (model.std, model.mean))
    pixels = seen["x"] * std + mean  # back to [0, 1]: the three channels are the same grey
    assert torch.allclose(pixels[:, 0], pixels[:, 2], atol=1e-6)
    assert pixels.min() > -1e-5 and pixels.max() < 1 + 1e-5


def test_runner_registry_agrees_with_the_builders():
    from harness.registry import MODELS
    from torch_ref.finetune import detection

    assert {name for name, spec in MODELS.items() if spec.finetune} == {*classifiers.ARCHS, "faster_rcnn"}
    assert MODELS["faster_rcnn"].variants == tuple(detection.DETECTORS)
    assert MODELS["faster_rcnn"].variants[0] == detection.DEFAULT_DETECTOR
