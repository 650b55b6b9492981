"""What both twins share and neither framework owns: input conventions, training settings, epoch orders.

``jax_impl``, ``torch_ref`` and the ``benchmarks`` harness all import from
here; this package imports neither JAX nor PyTorch, so each framework package
stays loadable without the other.
"""

from mnist_common.config import OPTIMIZERS, SCHEDULES, ConfigError, EpochStats, FitResult, TrainConfig
from mnist_common.preprocessing import BACKGROUND, MNIST_MEAN, MNIST_STD, normalize
from mnist_common.sampling import epoch_orders, random_shifts, training_tables

__all__ = [
    "BACKGROUND", "ConfigError", "EpochStats", "FitResult", "MNIST_MEAN", "MNIST_STD", "OPTIMIZERS", "SCHEDULES",
    "TrainConfig", "epoch_orders", "normalize", "random_shifts", "training_tables",
]
