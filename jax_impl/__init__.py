"""JAX/Flax NNX side: models and jit-compiled training.

Peers with ``torch_ref``; never imports torch or the ``benchmarks`` harness.
"""
