"""PyTorch side: twins of the JAX models, the same training verbs.

Peers with ``jax_impl``; never imports jax or the ``benchmarks`` harness.
"""
