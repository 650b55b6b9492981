"""The harness's view of each framework: build a model, train, evaluate, describe.

Each backend imports its framework only when it is constructed, so
``--framework torch`` never loads JAX and ``--framework jax`` never loads
PyTorch. Both expose the same small surface (``build``, ``fit``, ``evaluate``,
``kernels``, ``count_params``, ``device``, ``environment``), which
``harness.experiment`` uses without asking which framework it holds.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata as md
import os

from harness.environment import cpu_label
from harness.registry import ModelSpec, import_object
from harness.settings import Settings
from mnist_common.errors import UserError
from mnist_common.processes import World

#: The classes of torchvision's ImageNet weights: a file with this head gets a new 10-class one.
IMAGENET_CLASSES = 1000

#: ``--device``: the framework's default (a GPU when it sees one), the CPU, or a GPU (an error without one).
DEVICES = ("auto", "cpu", "gpu")


class ModelBuildError(UserError):
    """A model that cannot be built as asked (weights missing, image too small): one line, exit 2."""


class DeviceError(UserError):
    """A device that was asked for and is not there: one line, exit 2."""


@dataclasses.dataclass(frozen=True)
class WarmStart:
    """An exported model a CNN or ViT run starts from (``--weights MODEL_DIR``), whichever framework trained it.
    Hashable (scalars only): a Flax model carries it as a static attribute."""

    name: str  # the folder
    sha256: str  # of its weights file
    framework: str | None  # what trained it (its config's trained_with), when it says
    mode: str | None
    seed: int | None
    test_accuracy: float | None  # what it reached when it was exported
    source: str = "exported model"

    @classmethod
    def of(cls, folder: str, config: dict) -> WarmStart:
        trained = config.get("trained_with") or {}
        return cls(str(folder), config["weights"]["sha256"], trained.get("framework"), trained.get("mode"),
                   trained.get("seed"), (config.get("metrics") or {}).get("test_accuracy"))

    def label(self, seed: int | None = None) -> str:
        trained = f"trained by {self.framework}, seed {self.seed}; " if self.framework else ""
        return f"exported model {self.name} ({trained}sha256 {self.sha256[:12]})"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _versions(*packages: str) -> dict:
    out = {}
    for name in packages:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


class JaxBackend:
    """JAX on ``device`` (``auto``: its default backend; ``cpu``; ``gpu``), with the XLA CPU flags; one of
    ``world.size`` processes (``jax_impl.parallel.initialize``)."""

    name, label = "jax", "JAX/Flax"

    def __init__(self, device: str = "auto", world: World = World()):
        from jax_impl import xla_cpu

        self.xla_cpu_flags = xla_cpu.apply()  # before JAX starts its CPU backend

        import jax
        from flax import nnx

        from jax_impl import parallel, train

        if device == "cpu":
            jax.config.update("jax_platforms", "cpu")  # before the first computation starts a backend
        parallel.initialize(world)  # likewise
        self.jax, self.nnx, self.train = jax, nnx, train
        if device == "gpu" and not self.has_gpu():
            raise DeviceError(f"--device gpu: JAX sees no GPU (its devices: {self.jax.default_backend()})")
        if device == "cpu" and self.has_gpu():
            raise DeviceError("--device cpu: JAX had already started on a GPU in this process")

    def has_gpu(self) -> bool:
        return self.jax.default_backend() in ("gpu", "cuda", "rocm")

    def device_count(self) -> int:
        """Local devices a batch can be split over."""
        return len(self.jax.local_devices())

    def device(self) -> str:
        dev = self.jax.devices()[0]
        return f"cpu: {cpu_label()}" if dev.platform == "cpu" else f"{dev.platform}: {dev.device_kind}"

    def environment(self) -> dict:
        return {
            "versions": _versions("jax", "jaxlib", "flax", "optax"),
            "device": self.device(),
            "device_count": self.jax.device_count(),
            "processes": self.jax.process_count(),
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "xla_cpu_flags_applied": self.xla_cpu_flags,
            "threefry_partitionable": bool(self.jax.config.jax_threefry_partitionable),
            # None: XLA's default, which runs float32 dots and convolutions in TF32 on NVIDIA GPUs
            "default_matmul_precision": self.jax.config.jax_default_matmul_precision,
            "mem_fraction": os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION"),
        }

    def resolve(self, settings: Settings) -> Settings:
        """The settings as this backend runs them: ``kernels="auto"`` resolved for this JAX backend."""
        from jax_impl import kernels

        return settings.replace(kernels=kernels.resolve(settings.kernels))

    def build(self, spec: ModelSpec, settings: Settings, *, progress: bool = True):
        """The Flax model, its weights drawn from ``settings.seed``, with the settings' kernels and precision;
        a torchvision model's port read through ``MNISTClassifier``, with the settings' weights."""
        dtype = None if settings.precision == "float32" else self.jax.numpy.dtype(settings.precision)
        if spec.finetune:
            return self._build_port(spec, settings, dtype, progress)
        from jax_impl.models.init import build, check_weights_set, without_weights

        cls, args = import_object(spec.jax), (settings.variant,) if settings.variant else ()
        kwargs = dict(kernels=settings.kernels, dtype=dtype)
        if settings.weights in (None, "none"):
            return build(cls, *args, **kwargs, seed=settings.seed)
        from jax_impl.models import load_weights  # a warm start: the exported weights, this seed's dropout stream

        model = without_weights(lambda: cls(*args, **kwargs, rngs=self.nnx.Rngs(settings.seed)))
        model.weights_info = WarmStart.of(settings.weights, load_weights(model, settings.weights))
        check_weights_set(model)
        return model

    def _build_port(self, spec: ModelSpec, settings: Settings, dtype, progress: bool):
        """VGG16 or AlexNet in Flax with a 10-class head, as the PyTorch side builds it: random (``settings.seed``),
        or torchvision's weights converted (``jax_impl.models.layout``); an ImageNet file's 1000-class head is
        left out and the new head keeps its random weights, a 10-class file (a fine-tuned one) loads whole, and
        any other file is refused, as the PyTorch side refuses it."""
        from jax_impl.models import MNISTClassifier
        from jax_impl.models.init import build
        from jax_impl.models.layout import ConversionError, from_canonical, table

        net = build(import_object(spec.jax), num_classes=10, kernels=settings.kernels, dtype=dtype,
                    seed=settings.seed)
        model = MNISTClassifier(net, settings.model, settings.image_size, freeze_features=settings.freeze_features)
        state, info = torchvision_weights(settings.model, settings.weights, progress=progress)
        if state is not None:
            head = tuple(r.torch for r in table(net)[-2:])  # the last dense layer's weight and bias
            imagenet = head[0] in state and state[head[0]].shape[0] == IMAGENET_CLASSES
            keep = head if imagenet else ()
            arrays = {k: v.detach().float().cpu().numpy() for k, v in state.items() if k not in keep}
            try:
                from_canonical(net, arrays, source=f"weights from {info.name}", keep=keep)
            except (ConversionError, ValueError) as err:  # (a reshape of an array of another size: ValueError)
                raise ModelBuildError(f"weights from {info.name} do not fit {settings.model}: {err}") from None
        model.weights_info = info
        return model

    def fit(self, spec: ModelSpec, model, images, labels, config, **kwargs):
        return self.train.fit(model, images, labels, config, **kwargs)

    def training_step(self, model, settings: Settings, images, labels):
        """One update on the batch ``(images, labels)`` as ``fit`` compiles it (``jax_impl.train.TrainStep``)."""
        return self.train.TrainStep(model, settings.train_config(len(images)), images, labels)

    def evaluate(self, spec: ModelSpec, model, images, labels, settings: Settings) -> dict:
        return self.train.evaluate(model, images, labels, batch_size=settings.eval_batch_size)

    def kernels(self, model) -> str:
        """The layers the model runs: ``"stock"`` or ``"tuned"`` (``jax_impl.kernels``)."""
        return model.kernels

    def save(self, spec: ModelSpec, model, directory, metadata: dict) -> dict:
        """The exported model (``jax_impl.models.save``): canonical weights and config.json; for VGG16 and
        AlexNet their torchvision state dict, which ``--weights PATH`` loads in either framework."""
        from jax_impl.models import save
        from jax_impl.models.export import save_torchvision

        return save_torchvision(model, directory, metadata) if spec.finetune else save(model, directory, metadata)

    def load(self, directory):
        """An exported model, whichever framework trained it, in evaluation mode."""
        from jax_impl.models import load

        return load(directory)

    def check_weights(self, model: str, variant: str | None, choice: str, image_size: int) -> None:
        check_torchvision_weights(model, variant, choice, image_size)

    def count_params(self, model) -> int:
        from jax_impl.models import count_params

        return count_params(model)


def torchvision_weights(model: str, choice: str, *, progress: bool = True):
    """``--weights`` of a torchvision model -> (its state dict of tensors, or None for random init; what was
    used), as ``torch_ref.finetune.weights`` resolves it. The JAX ports read the same files: torchvision's are
    PyTorch pickles, so this loads PyTorch (read with ``weights_only=True``; safetensors files too)."""
    from torch_ref.finetune import WeightsError, classifiers, weights

    try:
        return weights.resolve(choice, classifiers.ARCHS[model].weights, progress=progress)
    except WeightsError as err:
        raise ModelBuildError(str(err)) from None


def check_torchvision_weights(model: str, variant: str | None, choice: str, image_size: int) -> None:
    """Fail before any training on weights that cannot be had or do not fit (``torch_ref.finetune.check_weights``)."""
    from torch_ref.finetune import WeightsError, check_weights

    try:
        check_weights(model, variant, choice, image_size=image_size)
    except (WeightsError, ValueError) as err:
        raise ModelBuildError(str(err)) from None


class TorchBackend:
    """PyTorch, eager. On a CUDA GPU it is set up as XLA runs JAX there, so that the two
    frameworks do the same arithmetic: float32 matrix products and convolutions in TF32
    (JAX's default precision on NVIDIA GPUs; PyTorch's default keeps matmuls in full
    float32), and convolution algorithms chosen by timing (``cudnn.benchmark``, as XLA
    autotunes at compile time). Both choices are recorded in the environment. One of
    ``world.size`` processes (``torch_ref.parallel.initialize``), on GPU ``LOCAL_RANK``'s."""

    name, label = "torch", "PyTorch"

    def __init__(self, device: str = "auto", world: World = World()):
        import torch

        from torch_ref import train

        self.torch, self.train = torch, train
        self._device = train.default_device() if device == "auto" else torch.device("cpu")
        if device == "gpu":
            if not torch.cuda.is_available():
                raise DeviceError("--device gpu: PyTorch sees no CUDA GPU")
            self._device = torch.device("cuda")
        if self._device.type == "cuda" and world.size > 1:  # one GPU per process
            self._device = torch.device("cuda", world.local_rank % torch.cuda.device_count())
        from torch_ref import parallel

        parallel.initialize(world, self._device)
        self.world = world
        if self._device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True

    def has_gpu(self) -> bool:
        return self._device.type != "cpu"

    def device_count(self) -> int:
        """One: a PyTorch run trains on one device per process."""
        return 1

    def device(self) -> str:
        if self._device.type == "cuda":
            return f"cuda: {self.torch.cuda.get_device_name(self._device)}"
        return f"cpu: {cpu_label()}" if self._device.type == "cpu" else self._device.type

    def environment(self) -> dict:
        return {
            "versions": _versions("torch", "torchvision"),
            "device": self.device(),
            "threads": self.torch.get_num_threads(),
            "processes": self.world.size,
            "cuda": self.torch.version.cuda,
            "float32_matmul_precision": self.torch.get_float32_matmul_precision(),
            "cudnn_allow_tf32": bool(self.torch.backends.cudnn.allow_tf32),
            "cudnn_benchmark": bool(self.torch.backends.cudnn.benchmark),
        }

    def build(self, spec: ModelSpec, settings: Settings, *, progress: bool = True):
        """The model on this backend's device, its weights (and dropout stream) from ``settings.seed``;
        the torchvision models get the settings' weights, image size and freezing."""
        self.torch.manual_seed(settings.seed)
        args = (settings.variant,) if settings.variant else ()
        if not spec.finetune:
            model = import_object(spec.torch)(*args).to(self._device)
            if settings.weights not in (None, "none"):  # a warm start: the exported weights, this seed's dropout
                from torch_ref.models import load_weights

                model.weights_info = WarmStart.of(settings.weights, load_weights(model, settings.weights))
            return model
        from torch_ref.finetune import WeightsError

        options = {"weights": settings.weights, "image_size": settings.image_size, "progress": progress}
        if settings.freeze_features:
            options["freeze_features"] = True
        try:
            return import_object(spec.torch)(*args, **options).to(self._device)
        except (WeightsError, ValueError) as err:
            raise ModelBuildError(str(err)) from None

    def resolve(self, settings: Settings) -> Settings:
        """The settings as this backend runs them (nothing to resolve for PyTorch)."""
        return settings

    def _task(self, spec: ModelSpec):
        return import_object(spec.torch_task) if spec.torch_task else self.train.CLASSIFICATION

    def fit(self, spec: ModelSpec, model, images, labels, config, **kwargs):
        return self.train.fit(model, images, labels, config, task=self._task(spec), **kwargs)

    def training_step(self, model, settings: Settings, images, labels):
        """One update on the batch ``(images, labels)`` as ``fit`` runs it (``torch_ref.train.TrainStep``)."""
        return self.train.TrainStep(model, settings.train_config(len(images)), images, labels)

    def evaluate(self, spec: ModelSpec, model, images, labels, settings: Settings) -> dict:
        """Evaluation in the run's precision, memory format and compile mode (the compiled model fit used)."""
        return self.train.evaluate(model, images, labels, batch_size=settings.eval_batch_size, task=self._task(spec),
                                   precision=settings.precision, compile=settings.torch_compile,
                                   channels_last=settings.channels_last)

    def kernels(self, model) -> None:
        return None  # PyTorch's own layers, always

    def save(self, spec: ModelSpec, model, directory, metadata: dict) -> dict:
        """The exported model: for the CNN and the ViT the canonical format (``torch_ref.models.save``); for the
        torchvision models their state dict as safetensors with the same config.json (``--weights PATH`` loads it)."""
        if not spec.finetune:
            from torch_ref.models import save

            return save(model, directory, metadata)
        from torch_ref.finetune.weights import save_state_dict

        return save_state_dict(model, directory, spec_name=metadata["trained_with"]["settings"]["model"],
                               metadata=metadata)

    def load(self, directory):
        """An exported model, whichever framework trained it, in evaluation mode, on this backend's device."""
        from torch_ref.models import load

        return load(directory, device=self._device)

    def check_weights(self, model: str, variant: str | None, choice: str, image_size: int) -> None:
        check_torchvision_weights(model, variant, choice, image_size)

    def count_params(self, model) -> int:
        from torch_ref.models import count_params

        return count_params(model)


BACKENDS = {"jax": JaxBackend, "torch": TorchBackend}
FRAMEWORKS = tuple(BACKENDS)
