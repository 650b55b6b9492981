"""Cross-framework parity: weight conversion both ways, numerical comparison, the checks and their CLI.

Imports both ``jax_impl`` and ``torch_ref``; only tests and its own runner import it.
"""
