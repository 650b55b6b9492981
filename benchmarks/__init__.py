"""The harness: MNIST loading and checks, metrics, presets, the runner and reports.

Framework-neutral: only the runner's backends import JAX or PyTorch, lazily.
"""
