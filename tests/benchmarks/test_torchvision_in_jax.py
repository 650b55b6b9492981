"""VGG16 and AlexNet fine-tuned in JAX by the runner: torchvision's weight files loaded, both frameworks side by side."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision
from cli_helpers import run_cli

from harness import settings as settings_lib
from harness.backends import JaxBackend, ModelBuildError
from harness.registry import MODELS
from jax_impl.models.layout import table, torch_to_flax_array


@pytest.mark.parametrize("classes", [1000, 10])
def test_a_torchvision_state_dict_file_loads_into_the_jax_port(tmp_path, classes):
    torch.manual_seed(0)
    state = torchvision.models.alexnet(num_classes=classes).state_dict()
    path = tmp_path / "alexnet.pth"
    torch.save(state, path)
    s = settings_lib.resolve("alexnet", "smoke", {"weights": str(path)})
    model = JaxBackend("cpu").build(MODELS["alexnet"], s, progress=False)
    assert model.weights_info.source == "file" and model.weights_info.sha256
    rows = {r.torch: r for r in table(model.net)}
    first = np.asarray(model.net.features[0].kernel.get_value())
    np.testing.assert_array_equal(first, torch_to_flax_array(rows["features.0.weight"], state["features.0.weight"]
                                                             .numpy()))
    head = np.asarray(model.net.classifier[2].kernel.get_value())
    if classes == 10:  # a fine-tuned file: its head too
        np.testing.assert_array_equal(head, state["classifier.6.weight"].numpy().T)
    else:  # ImageNet's 1000 classes: a new 10-class head, drawn from the seed
        assert head.shape == (4096, 10)


def test_a_file_with_another_head_is_refused_as_pytorch_refuses_it(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "alexnet-3.pth"
    torch.save(torchvision.models.alexnet(num_classes=3).state_dict(), path)
    s = settings_lib.resolve("alexnet", "smoke", {"weights": str(path)})
    with pytest.raises(ModelBuildError, match="do not fit alexnet"):
        JaxBackend("cpu").build(MODELS["alexnet"], s, progress=False)


def test_both_frameworks_fine_tune_alexnet_side_by_side(tmp_path):
    proc = run_cli("--framework", "both", "--model", "alexnet", "--preset", "smoke", "--train-size", "64",
                   "--val-size", "0", "--test-size", "100", "--weights", "none", "--no-progress", "--out",
                   str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert [(r["framework"], r["mode"], r["image_size"]) for r in runs] == [("jax", "tuned", 63),  # auto: tuned
                                                                           ("torch", "eager", 63)]
    assert runs[0]["params"] == runs[1]["params"] == 57_044_810
    assert all(r["weights"] == "random init (seed 0)" and r["images_per_s"] > 0 for r in runs)
    assert "JAX/PyTorch steady-state throughput, alexnet" in proc.stdout


@pytest.mark.slow  # a 528 MB file and VGG16's compile
def test_a_torch_saved_vgg16_state_dict_trains_in_jax(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "vgg16.pth"
    torch.save(torchvision.models.vgg16().state_dict(), path)
    proc = run_cli("--framework", "jax", "--model", "vgg16", "--preset", "smoke", "--weights", str(path),
                   "--train-size", "32", "--val-size", "0", "--test-size", "50", "--no-progress", "--out",
                   str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    (run,) = json.loads((tmp_path / "out" / "results.json").read_text())["runs"]
    assert run["weights_info"]["source"] == "file" and str(path) in run["weights"] and run["images_per_s"] > 0
