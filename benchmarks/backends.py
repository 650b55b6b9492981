"""The runner's view of each framework: build a model, train, evaluate, describe.

Each backend imports its framework only when it is constructed, so
``--framework torch`` never loads JAX and ``--framework jax`` never loads
PyTorch. Both expose the same small surface, which the runner uses blindly.
"""

from __future__ import annotations

import importlib.metadata as md
import os

from benchmarks.environment import cpu_name
from benchmarks.registry import ModelSpec, import_object


class ModelBuildError(Exception):
    """A model that cannot be built as asked (weights missing, image too small): one line, exit 2."""


def _versions(*packages: str) -> dict:
    out = {}
    for name in packages:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


class JaxBackend:
    name, label = "jax", "JAX/Flax"

    def __init__(self):
        from jax_impl import xla_cpu

        self.xla_cpu_flags = xla_cpu.apply()  # before JAX starts its CPU backend

        import jax
        from flax import nnx

        from jax_impl import train

        self.jax, self.nnx, self.train = jax, nnx, train

    def has_gpu(self) -> bool:
        return self.jax.default_backend() in ("gpu", "cuda", "rocm")

    def device(self) -> str:
        dev = self.jax.devices()[0]
        return f"cpu: {cpu_name()}" if dev.platform == "cpu" else f"{dev.platform}: {dev.device_kind}"

    def environment(self) -> dict:
        return {
            "versions": _versions("jax", "jaxlib", "flax", "optax"),
            "device": self.device(),
            "device_count": self.jax.device_count(),
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "xla_cpu_flags_applied": self.xla_cpu_flags,
            "threefry_partitionable": bool(self.jax.config.jax_threefry_partitionable),
            # None: XLA's default, which runs float32 dots and convolutions in TF32 on NVIDIA GPUs
            "default_matmul_precision": self.jax.config.jax_default_matmul_precision,
            "mem_fraction": os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION"),
        }

    def build(self, spec: ModelSpec, seed: int, variant: str | None = None, options: dict | None = None):
        args = (variant,) if variant else ()
        return import_object(spec.jax)(*args, rngs=self.nnx.Rngs(seed))

    def count_params(self, model) -> int:
        from jax_impl.models import count_params

        return count_params(model)


class TorchBackend:
    """PyTorch, eager. On a CUDA GPU it is set up as XLA runs JAX there, so that the two
    frameworks do the same arithmetic: float32 matrix products and convolutions in TF32
    (JAX's default precision on NVIDIA GPUs; PyTorch's default keeps matmuls in full
    float32), and convolution algorithms chosen by timing (``cudnn.benchmark``, as XLA
    autotunes at compile time). Both choices are recorded in the environment."""

    name, label = "torch", "PyTorch"

    def __init__(self):
        import torch

        from torch_ref import train

        self.torch, self.train = torch, train
        self._device = train.default_device()
        if self._device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True

    def has_gpu(self) -> bool:
        return self._device.type != "cpu"

    def device(self) -> str:
        if self._device.type == "cuda":
            return f"cuda: {self.torch.cuda.get_device_name(self._device)}"
        return f"cpu: {cpu_name()}" if self._device.type == "cpu" else self._device.type

    def environment(self) -> dict:
        return {
            "versions": _versions("torch", "torchvision"),
            "device": self.device(),
            "threads": self.torch.get_num_threads(),
            "cuda": self.torch.version.cuda,
            "float32_matmul_precision": self.torch.get_float32_matmul_precision(),
            "cudnn_allow_tf32": bool(self.torch.backends.cudnn.allow_tf32),
            "cudnn_benchmark": bool(self.torch.backends.cudnn.benchmark),
        }

    def build(self, spec: ModelSpec, seed: int, variant: str | None = None, options: dict | None = None):
        """The model on this backend's device; ``options`` go to the torchvision builders.

        ``options`` (finetune models only): ``weights``, ``image_size``, ``freeze_features``.
        """
        self.torch.manual_seed(seed)  # initial weights and the dropout stream
        args = (variant,) if variant else ()
        if not spec.finetune:
            return import_object(spec.torch)(*args).to(self._device)
        from torch_ref.finetune import WeightsError

        try:
            return import_object(spec.torch)(*args, **(options or {})).to(self._device)
        except (WeightsError, ValueError) as err:
            raise ModelBuildError(str(err)) from None

    def check_weights(self, model: str, variant: str | None, choice: str) -> None:
        """Fail before any training on weights that cannot be had (see ``torch_ref.finetune.weights``)."""
        from torch_ref.finetune import WeightsError, check_available, pretrained_weights

        try:
            check_available(choice, pretrained_weights(model, variant))
        except WeightsError as err:
            raise ModelBuildError(str(err)) from None

    def count_params(self, model) -> int:
        from torch_ref.models import count_params

        return count_params(model)


BACKENDS = {"jax": JaxBackend, "torch": TorchBackend}
FRAMEWORKS = tuple(BACKENDS)
