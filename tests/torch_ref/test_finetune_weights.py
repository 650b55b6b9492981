"""--weights auto|pretrained|none|PATH: files load back exactly, offline failures are clear."""

from __future__ import annotations

import hashlib
import urllib.error

import pytest
import torch
from safetensors.torch import save_file

from torch_ref.finetune import alexnet, faster_rcnn, weights
from torch_ref.finetune.weights import WeightsError, WeightsUnavailable


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty TORCH_HOME and a download that fails as it does with no network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    return tmp_path / "torch_home" / "hub" / "checkpoints"


def _assert_same(state_a: dict, state_b: dict) -> None:
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key


@pytest.fixture(scope="module")
def source_alexnet():
    torch.manual_seed(1)
    return alexnet(weights="none", image_size=63)


def test_state_dict_file_loads_back_bit_for_bit(tmp_path, source_alexnet):
    path = tmp_path / "alexnet_mnist.pt"
    torch.save(source_alexnet.state_dict(), path)  # keys "net.features.0.weight", ... (10-class head)
    torch.manual_seed(2)  # a different random init underneath: the file must win everywhere
    loaded = alexnet(weights=str(path), image_size=63)
    _assert_same(loaded.state_dict(), source_alexnet.state_dict())
    info = loaded.weights_info
    assert info.source == "file" and info.name == str(path)
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info.label().startswith(f"{path} (sha256 {info.sha256[:12]}")


def test_safetensors_file_loads_back_bit_for_bit(tmp_path, source_alexnet):
    path = tmp_path / "alexnet_mnist.safetensors"
    save_file({k: v.contiguous() for k, v in source_alexnet.net.state_dict().items()}, str(path))
    loaded = alexnet(weights=str(path), image_size=63)
    _assert_same(loaded.net.state_dict(), source_alexnet.net.state_dict())


def test_imagenet_shaped_file_keeps_features_and_gets_a_new_10_class_head(tmp_path):
    import torchvision

    torch.manual_seed(3)
    imagenet = torchvision.models.alexnet(weights=None)  # 1000 classes, as the torchvision file has
    path = tmp_path / "alexnet-imagenet.pth"
    torch.save(imagenet.state_dict(), path)
    loaded = alexnet(weights=str(path), image_size=63)
    for key, value in imagenet.state_dict().items():
        if not key.startswith("classifier.6."):
            assert torch.equal(loaded.net.state_dict()[key], value), key
    assert loaded.net.classifier[6].out_features == 10


def test_file_of_another_model_names_the_bad_keys(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"conv1.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(WeightsError, match=r"do not fit AlexNet: .*missing \(first features\.0\.weight\).*unexpected"):
        alexnet(weights=str(path), image_size=63)


@pytest.mark.parametrize("content", [b"not a checkpoint", None])
def test_unreadable_or_missing_file_is_a_weights_error(tmp_path, content):
    path = tmp_path / "broken.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(WeightsError, match="is not a state dict saved with torch.save" if content else "no such file"):
        weights.load_file(path)


def test_a_pickled_model_is_refused_without_pytorchs_unsafe_advice(tmp_path):
    """A whole pickled module (torch.save(model)) cannot load with weights_only=True; the message says what
    is accepted instead of repeating PyTorch's advice to load it unsafely."""
    path = tmp_path / "whole-model.pt"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(WeightsError) as err:
        weights.load_file(path)
    message = str(err.value)
    assert "weights_only=False" not in message and "\n" not in message
    assert "torch.save(model.state_dict())" in message and ".safetensors" in message
    with pytest.raises(WeightsError, match="a folder, not a state-dict file"):
        weights.load_file(tmp_path)


def test_pretrained_offline_without_cache_names_the_file_and_where_it_goes(offline):
    with pytest.raises(WeightsUnavailable) as err:
        alexnet(weights="pretrained", image_size=63)
    message = str(err.value)
    assert "\n" not in message
    assert "AlexNet_Weights.IMAGENET1K_V1" in message and "alexnet-owt-7be5be79.pth" in message
    assert str(offline / "alexnet-owt-7be5be79.pth") in message and "TORCH_HOME" in message


def test_auto_falls_back_to_random_init_with_a_loud_warning(offline, capsys):
    model = faster_rcnn(weights="auto", image_size=32)
    assert model.weights_info.source == "random init" and "unavailable" in model.weights_info.note
    assert model.weights_info.label(7) == "random init (seed 7)"
    err = capsys.readouterr().err
    assert "WARNING" in err and "RANDOM INITIALISATION" in err and "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights" in err


class _FakeWeights:
    """Stands in for a torchvision weights enum member (a real file cannot be had offline)."""

    name = "TINY_V1"

    def __init__(self, url: str):
        self.url = url


def _cache_file(folder, state: dict, *, good_hash: bool):
    folder.mkdir(parents=True, exist_ok=True)
    scratch = folder / "scratch.pth"
    torch.save(state, scratch)
    digest = hashlib.sha256(scratch.read_bytes()).hexdigest()
    name = f"tiny-{digest[:8] if good_hash else '00000000'}.pth"
    scratch.rename(folder / name)
    return _FakeWeights(f"https://example.invalid/models/{name}"), digest


def test_pretrained_reads_the_torch_home_cache_and_records_enum_and_hash(offline):
    state = {"w": torch.arange(6.0).reshape(2, 3)}
    fake, digest = _cache_file(offline, state, good_hash=True)
    loaded, info = weights.resolve("pretrained", fake)
    _assert_same(loaded, state)
    assert (info.source, info.name, info.sha256) == ("torchvision", "_FakeWeights.TINY_V1", digest)
    weights.check_available("pretrained", fake)  # cached: no error, no download


def test_corrupt_cached_file_is_an_error_even_for_auto(offline):
    fake, _ = _cache_file(offline, {"w": torch.ones(2)}, good_hash=False)
    with pytest.raises(WeightsError, match="corrupt"):
        weights.resolve("auto", fake)


def test_none_is_random_init_and_touches_no_file(offline):
    state, info = weights.resolve("none", None)
    assert state is None and info.source == "random init" and info.label() == "random init"
    assert not offline.exists()
