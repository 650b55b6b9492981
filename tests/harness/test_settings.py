"""harness.settings.resolve: presets, overrides, and one error naming the field for every bad value."""

from __future__ import annotations

import pytest

from harness.presets import VIT_PRESETS
from harness.settings import OVERRIDABLE, resolve
from mnist_common import ConfigError


def test_the_preset_with_the_given_overrides():
    s = resolve("vit", "cpu", {"epochs": 10, "lr": None, "seed": 3})
    p = VIT_PRESETS["cpu"]
    assert (s.model, s.preset, s.variant, s.optimizer) == ("vit", "cpu", p.variant, p.optimizer)
    assert s.epochs == 10 and s.lr == p.lr[p.optimizer] and s.seed == 3  # None means "not given"
    assert resolve("vit", "cpu", {"optimizer": "sgd", "weight_decay": 0}).lr == p.lr["sgd"]  # the rate follows it
    config = s.train_config(num_train=55000)
    assert config.warmup_steps == round(p.warmup_epochs * (55000 // p.batch_size))
    assert (config.epochs, config.seed, config.augment_shift) == (10, 3, p.augment_shift)
    assert set(s.as_dict()) == {"model", "preset", *OVERRIDABLE}


def test_settings_that_do_not_apply_are_errors_for_one_model_and_dropped_for_several():
    with pytest.raises(ConfigError, match="does not apply to cnn") as err:
        resolve("cnn", "smoke", {"weights": "none"})
    assert err.value.field == "weights"
    assert resolve("cnn", "smoke", {"weights": "none", "variant": "tiny/4"}, strict=False).weights is None
    assert resolve("vit", "smoke", {"variant": "tiny/4"}, strict=False).variant == "tiny/4"
    assert resolve("faster_rcnn", "smoke", {"variant": "tiny/4"}, strict=False).variant == "mobilenet_v3_large_320_fpn"
    with pytest.raises(ConfigError, match="no variants"):
        resolve("cnn", "smoke", {"variant": "tiny/4"})


@pytest.mark.parametrize("model,overrides,field", [
    ("resnet", {}, "model"),
    ("cnn", {"bogus": 1}, "bogus"),
    ("cnn", {"epochs": 0}, "epochs"),
    ("cnn", {"optimizer": "lbfgs"}, "optimizer"),
    ("vit", {"variant": "huge/1"}, "variant"),
    ("cnn", {"kernels": "fast"}, "kernels"),
    ("cnn", {"test_size": 10001}, "test_size"),
    ("cnn", {"warmup_epochs": -0.5}, "warmup_epochs"),
    ("alexnet", {"image_size": 62}, "image_size"),
    ("vgg16", {"weights": "/no/such/file.pt"}, "weights"),
    ("faster_rcnn", {"label_smoothing": 0.1}, "label_smoothing"),
])
def test_bad_values_name_their_field(model, overrides, field):
    with pytest.raises(ConfigError) as err:
        resolve(model, "smoke", overrides)
    assert err.value.field == field
    with pytest.raises(ConfigError, match="'huge' is unknown"):
        resolve("cnn", "huge")
