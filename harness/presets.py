"""Training presets: named, documented values of the settings, per model.

* ``smoke``: seconds, on a 2,000-image subset; for tests and a first look.
* ``cpu``: the default without a GPU; finishes in a few minutes on a 2-core
  CPU and still reaches the accuracy the study is about.
* ``full``: the lab's protocol (the whole training split, more epochs); the
  default when a GPU is visible.

A preset is a mapping from setting names (``harness.settings.Settings``' fields)
to values; a setting it leaves out takes :data:`COMMON`'s value, then the field's
own default. Every command-line setting left unset takes its value from the
preset; one that is set wins. The learning rate depends on the optimizer, so
presets give one per optimizer.
"""

from __future__ import annotations

PRESET_NAMES = ("smoke", "cpu", "full")

#: What every preset starts from (the harness's recipe, where it differs from a bare TrainConfig's defaults).
COMMON = {"schedule": "cosine", "val_size": 5000, "eval_batch_size": 1000}


def _lr(adam: float, sgd: float = 0.05) -> dict:
    """The base learning rate per optimizer: Adam and AdamW share one, SGD has its own."""
    return {"adam": adam, "adamw": adam, "sgd": sgd}


# CNN: Adam with per-step cosine decay (how the cpu preset was chosen: docs/runner.md).
CNN = {
    "smoke": dict(epochs=2, batch_size=128, lr=_lr(2e-3), train_size=2000, val_size=1000),
    "cpu": dict(epochs=6, batch_size=128, lr=_lr(2e-3)),
    "full": dict(epochs=15, batch_size=128, lr=_lr(1e-3)),
}

# ViT: AdamW with warm-up and cosine decay, label smoothing 0.1, weight decay 0.05
# off norms, biases and embeddings, random shifts of up to 2 pixels.
_VIT = dict(optimizer="adamw", weight_decay=0.05, label_smoothing=0.1)
VIT = {
    "smoke": _VIT | dict(epochs=2, batch_size=128, lr=_lr(2e-3), train_size=2000, val_size=1000, variant="tiny/7"),
    "cpu": _VIT | dict(epochs=6, batch_size=128, lr=_lr(3e-3), warmup_epochs=1, variant="tiny/7", augment_shift=2),
    "full": _VIT | dict(epochs=60, batch_size=128, lr=_lr(1e-3), warmup_epochs=5, variant="tiny/4",
                        augment_shift=2),
}

# torchvision models. The cpu presets are sized to about 10 minutes each on a 2-core CPU;
# full is the lab's protocol (224 px, the whole training split) for a GPU, with bfloat16 autocast.
_FT = dict(lr=_lr(1e-4, sgd=0.01), weights="auto")
_FT_FULL = dict(optimizer="sgd", warmup_epochs=0.2, precision="bfloat16")
ALEXNET = {
    "smoke": _FT | dict(epochs=1, batch_size=32, train_size=256, val_size=200, test_size=500, eval_batch_size=250,
                        image_size=63),
    "cpu": _FT | dict(epochs=2, batch_size=64, train_size=16000, val_size=2000, eval_batch_size=500, image_size=63),
    "full": _FT | _FT_FULL | dict(epochs=3, batch_size=128, eval_batch_size=500, image_size=224),
}
VGG16 = {
    "smoke": _FT | dict(epochs=1, batch_size=32, train_size=128, val_size=100, test_size=200, eval_batch_size=100,
                        image_size=32),
    "cpu": _FT | dict(epochs=1, batch_size=64, train_size=12800, val_size=1000, eval_batch_size=250, image_size=32),
    "full": _FT | _FT_FULL | dict(epochs=2, batch_size=64, eval_batch_size=250, image_size=224),
}
_DET = _FT | dict(optimizer="sgd", variant="mobilenet_v3_large_320_fpn")
FASTER_RCNN = {
    "smoke": _DET | dict(epochs=1, batch_size=8, train_size=64, val_size=40, test_size=100, eval_batch_size=50,
                         image_size=64),
    "cpu": _DET | dict(epochs=1, batch_size=8, warmup_epochs=0.1, train_size=8000, val_size=500, test_size=2000,
                       eval_batch_size=100, image_size=64),
    "full": _DET | dict(epochs=2, batch_size=16, lr=_lr(1e-4, sgd=0.02), warmup_epochs=0.1, eval_batch_size=100,
                        image_size=224, precision="bfloat16"),
}
