"""Reports from run records (``results.json``), one job per module.

* :mod:`~benchmarks.report.markdown`: the Markdown table every report is made of;
* :mod:`~benchmarks.report.tables`: per-run tables, ``results.md`` and ``results.csv``;
* :mod:`~benchmarks.report.summary`: statistics over seeds, speed ratios, ``report.md``;
* :mod:`~benchmarks.report.plots`: the PNG figures;
* :mod:`~benchmarks.report.compare`: two runs side by side, and collections of report folders
  with their time-to-accuracy table;
* :mod:`~benchmarks.report.blocks`: the generated blocks in README.md and docs/ files;
* :mod:`~benchmarks.report.files`: reading results, writing every report file atomically.

``python -m benchmarks.report`` is the command line (``__main__``).
"""
