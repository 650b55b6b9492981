"""One run: build a model in one framework, train it, test it, and return its record (``harness.record.RunRecord``).

Used by the runner for every (model, seed, framework) it is asked for, and by
the parity suite's training check, so both produce the same records.
"""

from __future__ import annotations

import time

from harness.data import MNIST, test_subset, train_val_split
from harness.environment import MachineLoad, busy_machine, git_commit, seconds_since_launch
from harness.metrics import classification_metrics, detection_metrics, prediction_metrics
from harness.record import RunRecord
from harness.registry import MODELS
from harness.settings import Settings


def run_one(backend, settings: Settings, data: MNIST, *, progress: bool = True, model=None,
            weights: str | None = None, on_epoch=None, say=None, on_log=None, checkpointing=None,
            export_dir=None) -> RunRecord:
    """Train and test ``settings.model`` with ``backend``; the record of the run.

    ``model`` (optional) is trained instead of a fresh one built from ``settings.seed``;
    ``weights`` then says what it started from. ``on_epoch`` gets each epoch's
    ``EpochStats`` as it ends, ``say`` the lines before the first (compiling), ``on_log(step, loss, lr)`` the
    training loss at every progress log; ``checkpointing`` (a ``mnist_common.checkpointing.Checkpointing``)
    keeps checkpoints and resumes; ``export_dir`` receives the trained model
    (``model.safetensors`` and ``config.json``). The record's ``first_epoch_s`` is the wait from the run's
    start (building, compiling) to its first epoch's end, ``launch_to_run_s`` the process's life before
    the run (imports, data). Raises ValueError when the data cannot be split as the settings ask.
    """
    s, spec = settings, MODELS[settings.model]
    load = MachineLoad()
    began, launched = time.perf_counter(), seconds_since_launch()
    first_epoch = []

    def epoch_ended(stats) -> None:
        if not first_epoch:
            first_epoch.append(time.perf_counter() - began)
        if on_epoch is not None:
            on_epoch(stats)
    split = train_val_split(len(data.train_labels), val_size=s.val_size, train_size=s.train_size)
    if len(split.train) < s.batch_size:
        raise ValueError(f"batch size {s.batch_size} is larger than the {len(split.train)} training images")
    if model is None:
        model = backend.build(spec, s, progress=progress)
    info = getattr(model, "weights_info", None)  # the torchvision builders say what they loaded
    if weights is None:
        weights = info.label(s.seed) if info is not None else f"random init (seed {s.seed})"
    start = None
    if getattr(info, "source", "") == "exported model":  # where it starts: tested eagerly, leaving compiling to fit
        start = _test(backend, s.replace(torch_compile="none"), model, data)[2]["accuracy"]
    config = s.train_config(len(split.train))
    fit = backend.fit(
        spec, model, data.train_images[split.train], data.train_labels[split.train], config,
        val_images=data.train_images[split.val] if len(split.val) else None,
        val_labels=data.train_labels[split.val] if len(split.val) else None,
        progress=progress, on_epoch=epoch_ended, checkpointing=checkpointing, say=say, on_log=on_log,
    )
    test_idx, test, metrics, eval_time = _test(backend, s, model, data)
    history = [h.as_dict() for h in fit.history]
    flops = fit.train_flops_per_image
    record = RunRecord(
        framework=backend.name,
        **s.record(backend.name) | {"kernels": backend.kernels(model), "all_reduce": fit.all_reduce},
        warmup_steps=config.warmup_steps, weights=weights, weights_info=info.as_dict() if info is not None else None,
        train_size=int(len(split.train)), val_size=int(len(split.val)), test_size=int(len(test_idx)),
        device=backend.device(), train_loss=fit.train_loss, val_accuracy=fit.history[-1].val_accuracy,
        train_time_s=fit.train_time_s, compile_time_s=fit.compile_time_s, recompilations=fit.recompilations,
        warmup_time_s=fit.warmup_time_s, images_per_s=fit.images_per_s, steps_per_epoch=fit.steps_per_epoch,
        devices=fit.devices, processes=fit.processes, steps_per_call=fit.steps_per_call,
        train_flops_per_image=flops, achieved_gflop_s=flops * fit.images_per_s / 1e9 if flops else None,
        history=history, **_test_fields(test, metrics, eval_time), params=backend.count_params(model),
        resumed_from=dict(zip(("epoch", "step"), fit.resumed_from)) if fit.resumed_from else None, **load.end(),
        start_test_accuracy=start, first_epoch_s=first_epoch[0] if first_epoch else None,
        launch_to_run_s=launched,
    )
    record.warnings = training_warnings(history, metrics["accuracy"])
    if busy := busy_machine(record.to_json()):
        record.warnings.append(f"timings from a busy machine: {busy}")
    if export_dir is not None:
        config = backend.save(spec, model, export_dir, {"trained_with": {
            "framework": backend.name, "mode": record.mode, "seed": s.seed, "preset": s.preset,
            "weights": weights, "git_commit": git_commit(), "settings": s.as_dict()},
            "metrics": {k: getattr(record, k) for k in ("test_accuracy", "test_macro_f1", "test_loss", "test_size")}})
        record.exported = {"folder": str(export_dir), "sha256": config["weights"]["sha256"]}
    return record


def _test(backend, s: Settings, model, data: MNIST):
    """Evaluate on the settings' test images: (their indices, the evaluation, its metrics, the seconds it took)."""
    test_idx = test_subset(len(data.test_labels), s.test_size)
    test_labels = data.test_labels[test_idx]
    t0 = time.perf_counter()
    test = backend.evaluate(MODELS[s.model], model, data.test_images[test_idx], test_labels, s)
    eval_time = time.perf_counter() - t0
    if "predictions" in test:  # a detector read as a classifier
        metrics = prediction_metrics(test["predictions"], test_labels) | detection_metrics(test["outputs"])
    else:
        metrics = classification_metrics(test["logits"], test_labels)
    return test_idx, test, metrics, eval_time


def _test_fields(test: dict, metrics: dict, eval_time: float) -> dict:
    """The record's test fields from an evaluation and its metrics."""
    return dict(test_loss=test["loss"], test_accuracy=metrics["accuracy"], test_macro_f1=metrics["macro_f1"],
                no_detection_rate=metrics.get("no_detection_rate"), mean_top_box_iou=metrics.get("mean_top_box_iou"),
                test_eval_time_s=eval_time, per_class=metrics["per_class"],
                confusion_matrix=metrics["confusion_matrix"])


def evaluate_exported(backend, settings: Settings, model, data: MNIST, *, weights: str) -> RunRecord:
    """The record of testing an exported ``model`` (no training): the test fields, the training ones empty."""
    test_idx, test, metrics, eval_time = _test(backend, settings, model, data)
    return RunRecord(framework=backend.name, model=settings.model, variant=settings.variant, test_only=True,
                     kernels=backend.kernels(model), precision=settings.precision, weights=weights,
                     test_size=int(len(test_idx)), device=backend.device(), params=backend.count_params(model),
                     **_test_fields(test, metrics, eval_time))


#: Below this test accuracy a 10-class run learnt next to nothing (chance is 10%).
NEAR_CHANCE = 0.2


def training_warnings(history: list[dict], test_accuracy: float) -> list[str]:
    """What says a finished run did not train properly although its loss stayed finite (a learning
    rate far too high, say): a training loss that ended above where it started, or test accuracy
    near chance."""
    warnings = []
    if len(history) > 1 and history[-1]["train_loss"] > history[0]["train_loss"]:
        warnings.append(f"training loss rose from {history[0]['train_loss']:.4g} (epoch 1) to "
                        f"{history[-1]['train_loss']:.4g} (epoch {len(history)})")
    if test_accuracy < NEAR_CHANCE:
        warnings.append(f"test accuracy {test_accuracy:.2%} is near chance (10%): the model did not learn")
    return warnings
