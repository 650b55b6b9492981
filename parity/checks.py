"""The parity checks: each builds both twins, makes their weights identical, and compares.

Every check returns a list of records ``{"model", "check", "max_abs_diff",
"tolerance", "passed", "detail"}``; ``detail`` names the path (the first over
tolerance, else the worst) so a failure says where the frameworks part ways.

* :func:`forward`: evaluation-mode logits (and the ViT's intermediates) on a
  real MNIST batch and on edge inputs, in both conversion directions.
* :func:`gradients`: the loss and every parameter's gradient on one batch.
* :func:`trajectory`: N optimizer steps from identical weights on identical
  batches, dropout off: the loss at every step and the final parameters.
* :func:`round_trip`: torch -> flax -> torch returns the same state dict, bit for bit.
* :func:`timing`: compile and steady-state step time per framework (reported, never asserted).
* :func:`training`: full training at a preset in both frameworks from the same
  initial weights and data order, dropout on, over several seeds, tested for
  equivalence within a declared margin (:mod:`parity.equivalence`).

The modes (compiled PyTorch, tuned JAX, bfloat16) are checked in :mod:`parity.modes`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
import torch.nn.functional as F
from flax import nnx

import jax_impl.models
import jax_impl.optim
import jax_impl.train
import torch_ref.models
import torch_ref.optim
import torch_ref.train
from harness.backends import JaxBackend, TorchBackend
from harness.experiment import run_one
from harness.settings import resolve
from mnist_common import TrainConfig
from parity.compare import compare_trees
from parity.convert import (
    flax_params,
    flax_to_torch,
    table_for,
    torch_grads_as_flax,
    torch_params,
    torch_to_flax,
    torch_to_flax_array,
)
from parity.equivalence import tost

MODELS = ("cnn", "vit")


@dataclasses.dataclass(frozen=True)
class Tolerances:
    forward: float = 1e-5  # max|diff| of logits and intermediates, float32
    gradients: float = 1e-5  # max|diff| / max(1, max|grad|) per parameter; loss absolute
    trajectory: float = 1e-4  # per-step losses and final parameters


CPU_TOLERANCES = Tolerances()
#: On a GPU, with TF32 off in PyTorch and "highest" matmul precision in JAX,
#: cuDNN's and XLA's convolution algorithms still sum in different orders.
GPU_TOLERANCES = Tolerances(forward=1e-4, gradients=1e-4, trajectory=1e-3)
#: In float64 the two frameworks' rounding differences are about 1e-16 relative, and a gradient through ReLUs
#: stays there. A trajectory drifts a little more: Adam divides the noise of near-zero gradients (about 1e-17)
#: by sqrt(v) + eps, which moves a parameter by up to lr * 1e-17 / eps = 1e-12 per step at lr 1e-3; 100 steps
#: stay far below 1e-6, and float32's own rounding (1e-7 a step, amplified) far above it (docs/parity.md).
FLOAT64_TOLERANCES = Tolerances(forward=1e-10, gradients=1e-10, trajectory=1e-6)

DTYPES = ("float32", "float64")


def for_dtype(tol: Tolerances, dtype: str) -> Tolerances:
    """The tolerances of a check run in ``dtype``: ``tol`` in float32, :data:`FLOAT64_TOLERANCES` in float64."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return FLOAT64_TOLERANCES if dtype == "float64" else tol


#: Why a check is asserted in the precision it is (docs/parity.md prints these).
#: A gradient through ReLU or max pooling jumps where a pre-activation crosses 0 (or two values of a window
#: tie): one within float32 rounding of 0 (about 1e-7 of its scale) flips a whole gradient entry, and which
#: ones do depends on the CPU's kernels, so those gradients are asserted in float64 and their float32
#: figure reported. Training feeds every difference back into the next step, so trajectories too. A forward
#: pass is continuous (a flip moves a logit by the pre-activation's size, about 1e-7), as are the ViT's
#: gradients (GELU, softmax and LayerNorm are smooth): those stay asserted in float32.
PRECISION_REASONS = {
    "float32": "continuous in what it compares: rounding differences stay at rounding size",
    "float64": "a ReLU/max-pool gradient or a training trajectory amplifies float32 rounding on some CPUs",
}

#: The twins whose gradients pass through ReLU or max pooling (the ViT's do not: GELU, softmax, LayerNorm).
RELU_MODELS = ("cnn", "vgg16", "alexnet")


def gradient_dtypes(model: str) -> tuple[str, str | None]:
    """(asserted dtype, measured-only dtype or None) of ``model``'s gradient check."""
    return ("float64", "float32") if model in RELU_MODELS else ("float32", None)


def on_gpu() -> bool:
    return jax.default_backend() != "cpu" or torch.cuda.is_available()


def strict_precision() -> Tolerances:
    """Full float32 on every device (no TF32) and the tolerances that then apply."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    jax.config.update("jax_default_matmul_precision", "highest")
    return GPU_TOLERANCES if on_gpu() else CPU_TOLERANCES


def build_pair(model: str, seed: int = 0, *, init_from: str = "torch", variant: str | None = None,
               kernels: str = "auto", dtype=None, **kwargs):
    """Both twins with identical weights: one framework's initialisation converted into the other.

    ``kernels`` and ``dtype`` go to the Flax model (``jax_impl.kernels``, its precision); ``kwargs`` to both.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r} (choose from {', '.join(MODELS)})")
    cls = {"cnn": "CNN", "vit": "ViT"}[model]
    args = (variant,) if variant else ()
    flax_model = getattr(jax_impl.models, cls)(*args, **kwargs, kernels=kernels, dtype=dtype, rngs=nnx.Rngs(seed))
    torch.manual_seed(seed)
    torch_model = getattr(torch_ref.models, cls)(*args, **kwargs).to(torch_ref.train.default_device())
    if init_from == "torch":
        torch_to_flax(torch_model, flax_model)
    elif init_from == "flax":
        flax_to_torch(flax_model, torch_model)
    else:
        raise ValueError(f"init_from must be 'torch' or 'flax', got {init_from!r}")
    return flax_model, torch_model


def _record(model: str, check: str, comparison, **extra) -> dict:
    return {
        "model": model, "check": check, "max_abs_diff": comparison.max_abs_diff,
        "tolerance": comparison.tolerance, "passed": bool(comparison.passed),
        "detail": comparison.message(), "dtype": "float32", **extra,
    }


@nnx.jit
def _flax_outputs(model, x):
    """Logits, with the ViT's intermediates: compiled, as training runs the model."""
    if isinstance(model, jax_impl.models.ViT):
        logits, intermediates = model(x, return_intermediates=True)
        return intermediates | {"logits": logits}
    return {"logits": model(x)}


def _outputs(flax_model, torch_model, images: np.ndarray) -> tuple[dict, dict]:
    """Evaluation-mode outputs of both, as flat dicts in forward order."""
    flax_model.eval()
    torch_model.eval()
    x_torch = torch_ref.train.preprocess(images, next(torch_model.parameters()).device)
    ours = _flax_outputs(flax_model, jax_impl.train.preprocess(images))
    with torch.no_grad():
        if isinstance(flax_model, jax_impl.models.ViT):
            logits_t, inter_t = torch_model(x_torch, return_intermediates=True)
            return ours, inter_t | {"logits": logits_t}
        return ours, {"logits": torch_model(x_torch)}


def edge_inputs(images: np.ndarray) -> dict[str, np.ndarray]:
    """A real batch, then inputs at the edges of the pixel range, and a batch of one."""
    shape = (4, *images.shape[1:])
    return {
        "mnist_batch": images,
        "all_zeros": np.zeros(shape, np.uint8),
        "saturated": np.full(shape, 255, np.uint8),
        "one_image": images[:1],
    }


def forward(model: str, images: np.ndarray, *, tol: Tolerances = CPU_TOLERANCES, seed: int = 0,
            table=None) -> list[dict]:
    """Logits (and intermediates) agree after conversion, in both directions, on every input."""
    records = []
    # A caller's (possibly wrong) table, to prove failures are caught, is applied torch -> flax only.
    for direction in ("torch",) if table is not None else ("torch", "flax"):
        flax_model, torch_model = build_pair(model, seed, init_from=direction)
        if table is not None:
            torch_to_flax(torch_model, flax_model, table=table)
        for name, batch in edge_inputs(images).items():
            ours, theirs = _outputs(flax_model, torch_model, batch)
            comparison = compare_trees(ours, theirs, tolerance=tol.forward)
            records.append(_record(model, f"forward ({direction} init, {name})", comparison))
    return records


def _flax_loss(model, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


def gradients(model: str, images: np.ndarray, labels: np.ndarray, *, tol: Tolerances = CPU_TOLERANCES,
              seed: int = 0, dtype: str = "float32") -> list[dict]:
    """Loss and every parameter's gradient on one batch, dropout off, in ``dtype`` (see :data:`PRECISION_REASONS`)."""
    tol = for_dtype(tol, dtype)
    with jax.enable_x64(dtype == "float64"):
        flax_model, torch_model = build_pair(model, seed)
        if dtype == "float64":
            _to_float64(flax_model, torch_model)
        flax_model.eval()
        torch_model.eval()
        x_np = _input(images, dtype)
        loss_f, grads_f = nnx.jit(nnx.value_and_grad(_flax_loss))(flax_model, jnp.asarray(x_np),
                                                                   jnp.asarray(labels, jnp.int32))
        device = next(torch_model.parameters()).device
        loss_t = F.cross_entropy(torch_model(_torch_input(x_np, device)),
                                 torch.as_tensor(labels, dtype=torch.long, device=device))
        torch_model.zero_grad()
        loss_t.backward()
        grads_flax = {".".join(map(str, p)): np.asarray(v.get_value()) for p, v in nnx.to_flat_state(grads_f)}
        loss_cmp = compare_trees({"loss": np.asarray(loss_f)}, {"loss": loss_t.item()}, tolerance=tol.gradients)
        grad_cmp = compare_trees(grads_flax, torch_grads_as_flax(torch_model, flax_model), tolerance=tol.gradients,
                                 scaled=True)
    return [_record(model, f"gradients (loss, {dtype})", loss_cmp, dtype=dtype),
            _record(model, f"gradients (parameters, {dtype})", grad_cmp, dtype=dtype)]


def _input(images: np.ndarray, dtype: str) -> np.ndarray:
    """uint8 NHWC MNIST -> normalised NHWC in ``dtype``: bit-identical inputs for both frameworks."""
    return np.asarray(jax_impl.train.preprocess(images), np.float64 if dtype == "float64" else np.float32)


def _torch_input(x_nhwc: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(x_nhwc.transpose(0, 3, 1, 2).copy()).to(device)  # NHWC -> NCHW


@nnx.jit
def _flax_update(model, optimizer, x, y):
    loss, grads = nnx.value_and_grad(_flax_loss)(model, x, y)
    optimizer.update(model, grads)
    return loss


def _to_float64(flax_model, torch_model) -> None:
    """Both models in float64 (call inside ``jax.enable_x64``)."""
    state = nnx.state(flax_model, nnx.Param)
    nnx.update(flax_model, jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), state))
    torch_model.double()


def trajectory(model: str, images: np.ndarray, labels: np.ndarray, *, optimizer: str, lr: float, steps: int,
               batch_size: int = 32, weight_decay: float = 0.0, dtype: str = "float32",
               tol: Tolerances = CPU_TOLERANCES, seed: int = 0) -> list[dict]:
    """``steps`` updates from identical weights on identical batches, dropout off.

    ``dtype="float64"`` runs both frameworks in double precision. Training feeds
    every difference back: a ReLU gradient flipped by float32 rounding (SGD), or
    rounding noise in tiny gradients that Adam divides by their own running RMS
    (about 1e-8, the size of Adam's epsilon), becomes an update-sized difference
    that later steps amplify; in float64 that noise is gone and what remains is
    the algorithms' agreement (:data:`PRECISION_REASONS`).
    """
    tol = for_dtype(tol, dtype)
    with jax.enable_x64(dtype == "float64"):
        flax_model, torch_model = build_pair(model, seed)
        if dtype == "float64":
            _to_float64(flax_model, torch_model)
        flax_model.eval()  # dropout off; gradients still flow
        torch_model.eval()
        device = next(torch_model.parameters()).device
        tx, _ = jax_impl.optim.make_optimizer(optimizer, lr, model=flax_model, weight_decay=weight_decay)
        opt_f = nnx.Optimizer(flax_model, tx, wrt=nnx.Param)
        opt_t, _ = torch_ref.optim.make_optimizer(optimizer, torch_model, lr, weight_decay=weight_decay)
        x_np = _input(images, dtype)  # bit-identical inputs for both
        x_f, y_f = jnp.asarray(x_np), jnp.asarray(labels, jnp.int32)
        x_t = _torch_input(x_np, device)
        y_t = torch.as_tensor(labels, dtype=torch.long, device=device)
        n = len(images) // batch_size
        losses_f, losses_t = [], []
        for step in range(steps):
            lo = (step % n) * batch_size
            losses_f.append(_flax_update(flax_model, opt_f, x_f[lo:lo + batch_size], y_f[lo:lo + batch_size]))
            loss = F.cross_entropy(torch_model(x_t[lo:lo + batch_size]), y_t[lo:lo + batch_size])
            opt_t.zero_grad(set_to_none=True)
            loss.backward()
            opt_t.step()
            losses_t.append(loss.detach())
        name = f"trajectory ({optimizer} lr {lr:g}, {steps} steps, {dtype})"
        loss_cmp = compare_trees({f"loss[{i}]": np.asarray(v) for i, v in enumerate(losses_f)},
                                 {f"loss[{i}]": v.item() for i, v in enumerate(losses_t)}, tolerance=tol.trajectory)
        theirs = torch_params(torch_model)
        ours = {r.flax: torch_to_flax_array(r, theirs[r.torch]) for r in table_for(flax_model, torch_model)}
        param_cmp = compare_trees(flax_params(flax_model), ours, tolerance=tol.trajectory)
    return [_record(model, f"{name}: losses", loss_cmp, dtype=dtype),
            _record(model, f"{name}: final parameters", param_cmp, dtype=dtype)]


def round_trip(model: str, *, seed: int = 0) -> list[dict]:
    """torch -> flax -> torch gives back the very same state dict."""
    flax_model, torch_model = build_pair(model, seed)  # torch init, converted into flax
    original = torch_params(torch_model)
    fresh = type(torch_model)().to(next(torch_model.parameters()).device)
    flax_to_torch(flax_model, fresh)
    comparison = compare_trees(torch_params(fresh), original, tolerance=0.0)
    return [_record(model, "round trip torch -> flax -> torch", comparison)]


def exported_files(model: str, images: np.ndarray, folder, *, tol: Tolerances = CPU_TOLERANCES,
                   seed: int = 0) -> list[dict]:
    """Each framework's exported model (``model.safetensors`` + ``config.json``) loaded by the other: the same
    evaluation-mode logits as the model that wrote it."""

    flax_model, torch_model = build_pair(model, seed)
    torch.manual_seed(seed + 1)
    torch_model = type(torch_model)(*((torch_model.variant,) if model == "vit" else ()))  # other weights than flax
    flax_model.eval(), torch_model.eval()
    records = []
    for written, saver, loader, name in (
            (flax_model, jax_impl.models.save, torch_ref.models.load, "JAX-written, PyTorch-loaded"),
            (torch_model, torch_ref.models.save, jax_impl.models.load, "PyTorch-written, JAX-loaded")):
        where = Path(folder) / name.split(",")[0]
        saver(written, where)
        loaded = loader(where)
        pair = (written, loaded) if written is flax_model else (loaded, written)
        ours, theirs = _outputs(*pair, images)
        records.append(_record(model, f"exported files ({name}): forward",
                               compare_trees({"logits": ours["logits"]}, {"logits": theirs["logits"]},
                                             tolerance=tol.forward)))
    return records


def timing(model: str, images: np.ndarray, labels: np.ndarray, *, batch_size: int = 128, steps: int = 20,
           seed: int = 0) -> dict:
    """Compile time and steady-state step time of the real training steps, per framework."""
    n = batch_size * steps
    config = TrainConfig(epochs=2, batch_size=batch_size)  # the second epoch is steady state
    orders = np.stack([np.arange(n), np.arange(n)])
    flax_model, torch_model = build_pair(model, seed)
    out = {}
    for name, module, net in (("jax", jax_impl.train, flax_model), ("torch", torch_ref.train, torch_model)):
        result = module.fit(net, images[:n], labels[:n], config, orders=orders, progress=False)
        out[name] = {
            "compile_time_s": result.compile_time_s,
            "warmup_time_s": result.warmup_time_s,
            "step_time_ms": 1000 * result.history[1].epoch_time_s / steps,
        }
    out["jax_over_torch_speed"] = out["torch"]["step_time_ms"] / out["jax"]["step_time_ms"]
    out["batch_size"] = batch_size
    return out


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """Training parity of one model, declared before running: the margin within which the two frameworks'
    mean test accuracies count as the same, the seeds, and the pilot spread the seed count was chosen from."""

    margin_pp: float
    seeds: tuple[int, ...]
    pilot_sd_pp: float  # SD of the per-seed differences in a first 3-seed run (docs/parity.md)


#: The CNN at the cpu preset varies by about 0.04 pp between seeds in one framework; 0.15 pp is well above
#: that. The ViT, undertrained at six epochs, varies by about 0.3 pp: 0.5 pp is less than two seeds' spread.
#: The seed counts are :func:`parity.equivalence.seeds_needed` for the pilot spreads (80% power, alpha 0.05).
TRAINING_PLANS = {
    "cnn": TrainingPlan(margin_pp=0.15, seeds=(0, 1, 2), pilot_sd_pp=0.05),
    "vit": TrainingPlan(margin_pp=0.5, seeds=tuple(range(7)), pilot_sd_pp=0.44),
}


#: What a training-parity record compares: its two sides, the first's accuracy minus the second's.
SIDES = {"frameworks": ("jax", "torch"), "kernels": ("tuned", "stock")}


def training(model: str, data, *, seeds: list[int] | None = None, preset: str = "cpu",
             progress: bool = False, compare: str = "frameworks") -> dict:
    """Train two sides at ``preset`` from the same initial weights and data order, per seed, and test their
    mean test accuracies for equivalence (:func:`parity.equivalence.tost`) within the model's margin.

    ``compare="frameworks"``: JAX against PyTorch, the Flax initialisation of each seed
    converted into the PyTorch model; both draw the same orders and augmentation
    shifts from the seed, so only dropout's random streams differ. ``"kernels"``: JAX's
    tuned layers against its stock ones, both built from the seed (the same weights;
    the tuned dropout draws other masks), so the kernels' accuracies are compared by
    numbers, not by one run each. ``seeds`` default to the model's declared plan.
    """
    plan = TRAINING_PLANS[model]
    seeds = list(plan.seeds if seeds is None else seeds)
    sides = SIDES[compare]
    backends = (JaxBackend(), TorchBackend())
    runs = []
    for seed in seeds:
        if compare == "kernels":
            for kernels in sides:
                s = resolve(model, preset, {"seed": seed, "kernels": kernels})
                runs.append(run_one(backends[0], s, data, progress=progress).to_json() | {"side": kernels})
            continue
        s = resolve(model, preset, {"seed": seed})
        flax_model, torch_model = build_pair(model, seed, init_from="flax", variant=s.variant)
        weights = f"Flax init (seed {seed}), converted to PyTorch"
        for backend, net in zip(backends, (flax_model, torch_model)):
            record = run_one(backend, s, data, progress=progress, model=net, weights=weights).to_json()
            runs.append(record | {"side": record["framework"]})
    acc = {side: [r["test_accuracy"] for r in runs if r["side"] == side] for side in sides}
    result = tost([100 * (a - b) for a, b in zip(*acc.values())], plan.margin_pp)
    return {
        "model": model, "preset": preset, "seeds": seeds, "compare": compare, "sides": list(sides),
        "test_accuracy": acc,
        "mean_test_accuracy": {side: float(np.mean(v)) for side, v in acc.items()},
        "gap_pp": result.mean_pp, "equivalence": result.as_dict(), "passed": result.equivalent,
        "runs": [{k: r[k] for k in ("side", "framework", "kernels", "seed", "test_accuracy", "test_macro_f1",
                                     "test_loss", "train_loss", "train_time_s", "images_per_s", "weights")}
                 for r in runs],
    }
