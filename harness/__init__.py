"""The harness library: plans, runs and records experiments for the commands in ``benchmarks``.

MNIST loading and checks, settings declared once, the plan of a command, the frameworks' backends, one run
(train, test, export), output folders, the launch of several processes, metrics, statistics and reports.
Framework-neutral: only the backends import JAX or PyTorch, lazily, for the framework asked for.
"""
