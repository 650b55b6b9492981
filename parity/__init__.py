"""Cross-framework parity: weight conversion and numerical comparison (issue 4).

Imports both ``jax_impl`` and ``torch_ref``; only tests and its own runner import it.
"""
