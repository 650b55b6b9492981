"""The commands: ``python -m benchmarks.run``, ``.profile``, ``.predict`` and ``.report``.

Each parses its command line and hands the work to the harness library (``harness``); none holds logic of
its own that another part of the project needs.
"""
