"""Settings declared once: resolve from presets and overrides, one error naming the field, and what each
declaration gives (its flag, its check, its place in TrainConfig and in the run record)."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from harness import presets
from harness.registry import MODELS
from harness.settings import OVERRIDABLE, Settings, add_flags, overrides, presets_table, resolve
from mnist_common import ConfigError, TrainConfig
from mnist_common.settings import declared, in_range, setting


def test_the_preset_with_the_given_overrides():
    s = resolve("vit", "cpu", {"epochs": 10, "lr": None, "seed": 3})
    p = presets.VIT["cpu"]
    assert (s.model, s.preset, s.variant, s.optimizer) == ("vit", "cpu", p["variant"], p["optimizer"])
    assert s.epochs == 10 and s.lr == p["lr"][p["optimizer"]] and s.seed == 3  # None means "not given"
    assert resolve("vit", "cpu", {"optimizer": "sgd", "weight_decay": 0}).lr == p["lr"]["sgd"]  # the rate follows
    config = s.train_config(num_train=55000)
    assert config.warmup_steps == round(p["warmup_epochs"] * (55000 // p["batch_size"]))
    assert (config.epochs, config.seed, config.augment_shift) == (10, 3, p["augment_shift"])
    assert set(s.as_dict()) == {"model", "preset", *OVERRIDABLE}


def test_every_preset_names_declared_settings_only_and_resolves():
    names = {f.name for f, _ in declared(Settings)}
    for spec in MODELS.values():
        assert set(spec.presets) == set(presets.PRESET_NAMES)
        for values in spec.presets.values():
            assert set(values) <= names, set(values) - names
    assert "vit" in presets_table() and "1 warm-up epoch" in presets_table()


def test_settings_that_do_not_apply_are_errors_for_one_model_and_dropped_for_several():
    with pytest.raises(ConfigError, match="does not apply to cnn") as err:
        resolve("cnn", "smoke", {"weights": "auto"})
    assert err.value.field == "weights"
    assert resolve("cnn", "smoke", {"weights": "auto", "variant": "tiny/4"}, strict=False).weights is None
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
    ("cnn", {"all_reduce": "ring"}, "all_reduce"),
    ("cnn", {"all_reduce": "flat", "kernels": "stock"}, "all_reduce"),  # Flax's dropout: one mask per device
])
def test_bad_values_name_their_field(model, overrides, field):
    with pytest.raises(ConfigError) as err:
        resolve(model, "smoke", overrides)
    assert err.value.field == field
    with pytest.raises(ConfigError, match="'huge' is unknown"):
        resolve("cnn", "huge")


def test_train_config_and_the_record_come_from_the_declarations():
    s = resolve("cnn", "cpu", {"optimizer": "sgd"})
    config = s.train_config(55000)
    for field in dataclasses.fields(TrainConfig):  # every training field as it is, warm-up steps derived
        if field.name != "warmup_steps":
            assert getattr(config, field.name) == getattr(s, field.name), field.name
    jax, torch = s.record("jax"), s.record("torch")
    assert jax["momentum"] == torch["momentum"] == 0.9  # SGD's: recorded
    assert jax["torch_compile"] is None and torch["torch_compile"] == "none"  # each framework's own
    assert jax["kernels"] == "auto" and torch["kernels"] is None
    assert "train_size" not in jax and "warmup_steps" not in jax  # the record's own, measured where they are
    assert resolve("cnn", "cpu").record("jax")["momentum"] is None  # Adam has none


def test_one_declaration_is_a_flag_a_check_a_training_setting_and_a_record_field():
    """Adding a hyperparameter: one field. Here a subclass adds Adam's beta2 as a harness would."""

    @dataclasses.dataclass(frozen=True)
    class WithBeta2(Settings):
        beta2: float = setting(0.999, "Adam's second-moment decay", check=in_range(0, 1))

    parser = argparse.ArgumentParser()
    add_flags(parser, WithBeta2)
    args = parser.parse_args(["--beta2", "0.99"])
    assert "--beta2" in parser.format_help() and "Adam's second-moment decay" in parser.format_help()
    assert overrides(args, WithBeta2)["beta2"] == 0.99
    s = WithBeta2(model="cnn", beta2=0.99)
    assert s.record("jax")["beta2"] == 0.99 and s.as_dict()["beta2"] == 0.99
    with pytest.raises(ConfigError, match=r"beta2 must be in \[0, 1\), got 1.5"):
        WithBeta2(model="cnn", beta2=1.5)


def test_weights_naming_a_folder_start_a_cnn_or_vit_and_files_stay_the_torchvision_models(tmp_path):
    assert resolve("cnn", "smoke", {"weights": str(tmp_path)}).weights == str(tmp_path)
    state = tmp_path / "w.pt"
    state.write_bytes(b"")
    assert resolve("cnn", "smoke", {"weights": str(state)}, strict=False).weights is None  # for the others
    assert resolve("vgg16", "smoke", {"weights": str(state)}, strict=False).weights == str(state)
    assert resolve("cnn", "smoke", {"weights": "pretrained"}, strict=False).weights is None
    with pytest.raises(ConfigError, match="is a file, not a model folder"):
        resolve("cnn", "smoke", {"weights": str(state)})
    with pytest.raises(ConfigError, match="no such model folder"):
        resolve("vit", "smoke", {"weights": str(tmp_path / "nothing")})


def test_weights_none_is_a_cnn_or_vits_random_initialisation_as_documented():
    for model in ("cnn", "vit"):
        assert resolve(model, "smoke", {"weights": "none"}).weights is None
        assert Settings(model=model, weights="none").weights is None
    assert resolve("vgg16", "smoke", {"weights": "none"}).weights == "none"
    with pytest.raises(ConfigError, match="does not apply to cnn"):
        resolve("cnn", "smoke", {"weights": "pretrained"})
