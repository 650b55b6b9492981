"""Training presets: named, documented hyperparameter sets per model.

* ``smoke``: seconds, on a 2,000-image subset; for tests and a first look.
* ``cpu``: the default without a GPU; finishes in a few minutes on a 2-core
  CPU and still reaches the accuracy the study is about.
* ``full``: the lab's protocol (the whole training split, more epochs); the
  default when a GPU is visible.

Every CLI flag left unset takes its value from the preset; a flag that is set
wins. The learning rate depends on the optimizer, so presets hold one per
optimizer.
"""

from __future__ import annotations

import dataclasses

PRESET_NAMES = ("smoke", "cpu", "full")


@dataclasses.dataclass(frozen=True)
class Preset:
    epochs: int
    batch_size: int
    lr: dict  # optimizer name -> base learning rate
    optimizer: str = "adam"
    momentum: float = 0.9
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    train_size: int | None = None  # None: the whole training split
    val_size: int = 5000
    eval_batch_size: int = 1000
    variant: str | None = None  # for models with a variants table
    weight_decay: float = 0.0  # adamw only; never on norms, biases, embeddings
    label_smoothing: float = 0.0
    augment_shift: int = 0  # random shifts of up to this many pixels; 0: none
    test_size: int | None = None  # None: all 10,000 test images; else a fixed random subset
    # torchvision models only
    image_size: int | None = None  # MNIST is resized to this side
    weights: str | None = None  # auto | pretrained | none | a path
    freeze_features: bool = False  # train only the classifier layers
    precision: str = "float32"  # float32, or bfloat16 computation (mixed precision)


# CNN: Adam with per-step cosine decay (how the cpu preset was chosen: docs/runner.md).
CNN_PRESETS = {
    "smoke": Preset(epochs=2, batch_size=128, lr={"adam": 2e-3, "adamw": 2e-3, "sgd": 0.05}, train_size=2000,
                    val_size=1000),
    "cpu": Preset(epochs=6, batch_size=128, lr={"adam": 2e-3, "adamw": 2e-3, "sgd": 0.05}),
    "full": Preset(epochs=15, batch_size=128, lr={"adam": 1e-3, "adamw": 1e-3, "sgd": 0.05}),
}

# ViT: AdamW with warm-up and cosine decay, label smoothing 0.1, weight decay 0.05
# off norms, biases and embeddings, random shifts of up to 2 pixels.
_VIT_LR = {"adam": 1e-3, "adamw": 1e-3, "sgd": 0.05}
_VIT_CPU_LR = {"adam": 3e-3, "adamw": 3e-3, "sgd": 0.05}
VIT_PRESETS = {
    "smoke": Preset(epochs=2, batch_size=128, lr={"adam": 2e-3, "adamw": 2e-3, "sgd": 0.05}, optimizer="adamw",
                    train_size=2000, val_size=1000, variant="tiny/7", weight_decay=0.05, label_smoothing=0.1),
    "cpu": Preset(epochs=6, batch_size=128, lr=_VIT_CPU_LR, optimizer="adamw", warmup_epochs=1, variant="tiny/7",
                  weight_decay=0.05, label_smoothing=0.1, augment_shift=2),
    "full": Preset(epochs=60, batch_size=128, lr=_VIT_LR, optimizer="adamw", warmup_epochs=5, variant="tiny/4",
                   weight_decay=0.05, label_smoothing=0.1, augment_shift=2),
}


# torchvision models. The cpu presets are sized to about 10 minutes each on a 2-core CPU;
# full is the lab's protocol (224 px, the whole training split) for a GPU, with bfloat16 autocast.
_FT_LR = {"adam": 1e-4, "adamw": 1e-4, "sgd": 0.01}
ALEXNET_PRESETS = {
    "smoke": Preset(epochs=1, batch_size=32, lr=_FT_LR, train_size=256, val_size=200, test_size=500,
                    eval_batch_size=250, image_size=63, weights="auto"),
    "cpu": Preset(epochs=2, batch_size=64, lr=_FT_LR, train_size=16000, val_size=2000, eval_batch_size=500,
                  image_size=63, weights="auto"),
    "full": Preset(epochs=3, batch_size=128, lr=_FT_LR, optimizer="sgd", warmup_epochs=0.2, eval_batch_size=500,
                   image_size=224, weights="auto", precision="bfloat16"),
}
VGG16_PRESETS = {
    "smoke": Preset(epochs=1, batch_size=32, lr=_FT_LR, train_size=128, val_size=100, test_size=200,
                    eval_batch_size=100, image_size=32, weights="auto"),
    "cpu": Preset(epochs=1, batch_size=64, lr=_FT_LR, train_size=12800, val_size=1000, eval_batch_size=250,
                  image_size=32, weights="auto"),
    "full": Preset(epochs=2, batch_size=64, lr=_FT_LR, optimizer="sgd", warmup_epochs=0.2, eval_batch_size=250,
                   image_size=224, weights="auto", precision="bfloat16"),
}
_DET_LR = {"adam": 1e-4, "adamw": 1e-4, "sgd": 0.01}
_DETECTOR = "mobilenet_v3_large_320_fpn"
FASTER_RCNN_PRESETS = {
    "smoke": Preset(epochs=1, batch_size=8, lr=_DET_LR, optimizer="sgd", train_size=64, val_size=40, test_size=100,
                    eval_batch_size=50, image_size=64, weights="auto", variant=_DETECTOR),
    "cpu": Preset(epochs=1, batch_size=8, lr=_DET_LR, optimizer="sgd", warmup_epochs=0.1, train_size=8000,
                  val_size=500, test_size=2000, eval_batch_size=100, image_size=64, weights="auto", variant=_DETECTOR),
    "full": Preset(epochs=2, batch_size=16, lr={"adam": 1e-4, "adamw": 1e-4, "sgd": 0.02}, optimizer="sgd",
                   warmup_epochs=0.1, eval_batch_size=100, image_size=224, weights="auto", precision="bfloat16", variant=_DETECTOR),
}


def _recipe(p: Preset) -> str:
    parts = [f"{p.optimizer} {p.lr[p.optimizer]:g}", p.schedule]
    if p.warmup_epochs:
        parts.append(f"{p.warmup_epochs:g} warm-up epoch{'' if p.warmup_epochs == 1 else 's'}")
    if p.weight_decay:
        parts.append(f"weight decay {p.weight_decay:g}")
    if p.label_smoothing:
        parts.append(f"label smoothing {p.label_smoothing:g}")
    if p.augment_shift:
        parts.append(f"shifts up to {p.augment_shift} px")
    return ", ".join(parts)


def _extras(p: Preset) -> str:
    parts = [f"variant {p.variant}"] if p.variant else []
    if p.image_size:
        parts.append(f"{p.image_size} px")
    if p.weights:
        parts.append(f"weights {p.weights}")
    if p.freeze_features:
        parts.append("features frozen")
    if p.precision != "float32":
        parts.append(p.precision)
    return ", ".join(parts) or "-"


def presets_table() -> str:
    """Every model's presets as one Markdown table (``python -m benchmarks.run --list-presets``)."""
    from benchmarks.registry import MODELS
    from benchmarks.report.markdown import table

    def size(n, whole):
        return whole if n is None else f"{n:,}"

    rows = [[name, preset, str(p.epochs), str(p.batch_size), size(p.train_size, "all"), f"{p.val_size:,}",
             size(p.test_size, "10,000"), _recipe(p), _extras(p)]
            for name, spec in MODELS.items() for preset, p in spec.presets.items()]
    return table(["model", "preset", "epochs", "batch", "training images", "validation", "test", "recipe",
                  "model settings"], rows)
