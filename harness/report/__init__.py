"""Reports from run records (``results.json``), one job per module.

* :mod:`~harness.report.markdown`: the Markdown table every report is made of;
* :mod:`~harness.report.tables`: per-run tables, ``results.md`` and ``results.csv``;
* :mod:`~harness.report.summary`: statistics over seeds, speed ratios, ``report.md``;
* :mod:`~harness.report.plots`: the PNG figures;
* :mod:`~harness.report.compare`: two runs side by side, and collections of report folders
  with their time-to-accuracy table;
* :mod:`~harness.report.blocks`: the generated blocks in README.md and docs/ files;
* :mod:`~harness.report.files`: reading results, writing every report file atomically.

``python -m benchmarks.report`` is its command line (``benchmarks/report.py``).
"""
