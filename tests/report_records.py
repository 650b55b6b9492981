"""Run records for report tests: what benchmarks.run writes, with round numbers."""

from __future__ import annotations

from harness.report.summary import throughput_ratios


def sample_run(framework, model, seed, acc, images_per_s, *, variant=None, epochs=2):
    """One run record with the fields a report reads."""
    history = [{"epoch": e + 1, "train_loss": 0.5 / (e + 1) + seed * 0.01, "val_loss": 0.3 / (e + 1),
                "val_accuracy": 0.9 + 0.02 * e + 0.001 * seed, "epoch_time_s": 10.0, "images_per_s": images_per_s,
                "lr": 1e-3} for e in range(epochs)]
    cm = [[0] * 10 for _ in range(10)]
    for c in range(10):
        cm[c][c] = 98
        cm[c][(c + 1) % 10] = 2
    return {
        "framework": framework, "model": model, "variant": variant, "mode": "tuned" if framework == "jax" else "eager",
        "optimizer": "adam", "epochs": epochs,
        "batch_size": 128, "lr": 1e-3, "momentum": None, "schedule": "cosine", "warmup_steps": 0,
        "seed": seed, "preset": "cpu", "weights": f"random init (seed {seed})", "train_size": 55000,
        "val_size": 5000, "test_size": 10000, "device": "cpu: test", "train_loss": history[-1]["train_loss"],
        "val_accuracy": history[-1]["val_accuracy"], "test_loss": 0.03, "test_accuracy": acc,
        "test_macro_f1": acc - 0.0001, "train_time_s": 60000 / images_per_s, "compile_time_s": 0.5 if framework == "jax" else 0.0,
        "warmup_time_s": 0.05, "images_per_s": images_per_s, "test_eval_time_s": 1.0, "steps_per_epoch": 429,
        "params": 421642, "per_class": {str(c): {"precision": 0.98, "recall": 0.98, "f1-score": 0.98, "support": 100}
                                        for c in range(10)},
        "confusion_matrix": cm, "history": history,
    }


def sample_results() -> dict:
    """Three seeds of the CNN in both frameworks and one PyTorch ViT run, as benchmarks.run writes them."""
    runs = []
    for seed, (ja, ta) in enumerate([(0.9934, 0.9924), (0.9931, 0.9919), (0.9935, 0.9926)]):
        runs += [sample_run("jax", "cnn", seed, ja, 6000.0 + 100 * seed), sample_run("torch", "cnn", seed, ta, 5000.0)]
    runs.append(sample_run("torch", "vit", 0, 0.978, 2400.0, variant="tiny/7"))
    return {
        "command": "python -m benchmarks.run --framework both --seeds 0,1,2",
        "settings": {},
        "environment": {
            "host": {"python": "3.11.7", "platform": "Linux", "cpu": "Test CPU", "cpu_count": 2, "numpy": "2.0",
                     "xla_flags": "", "git_commit": "abc123"},
            "data": {"source": "idx", "location": "data/mnist", "train": 60000, "test": 10000,
                     "checksums": {"train-images-idx3-ubyte.gz": {"sha256": "ab" * 32, "records_sha256": "cd" * 32,
                                                                  "verified_by_sha256sums": True}}},
            "frameworks": {"jax": {"versions": {"jax": "0.10.2"}, "device": "cpu: Test CPU", "device_count": 1},
                           "torch": {"versions": {"torch": "2.14.1"}, "device": "cpu: Test CPU", "threads": 2}},
        },
        "runs": runs,
        "throughput_ratios": throughput_ratios(runs),
    }
