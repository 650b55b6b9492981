"""Statistics over seeds: mean, standard deviation and a 95% interval per model and framework.

With n seeds the interval is the t-interval of the mean,
``mean +- t(0.975, n-1) * std / sqrt(n)`` with the sample standard deviation
(``ddof=1``): with 3 seeds ``t`` is 4.30, so the interval is honest about how
little three runs pin down. It is given from three seeds on: with two, ``t`` is
12.7 and the interval spans more than the metric can (an accuracy interval of
[-12.63, 111.46]%), which says nothing. It is clipped to what the metric can be
(accuracy and F1 in [0, 1], losses and times >= 0). One seed has no spread: std
and interval are None.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as scipy_stats

#: Per-run numbers summarised over seeds: key in a run record -> label.
METRICS = {
    "train_loss": "training loss",
    "test_loss": "test loss",
    "test_accuracy": "test accuracy",
    "test_macro_f1": "macro-F1",
    "train_time_s": "training time (s)",
    "compile_time_s": "compile time (s)",
    "images_per_s": "images/s",
}


#: The fewest seeds a 95% interval is given for (see the module's docstring).
MIN_SEEDS_FOR_INTERVAL = 3
#: What each metric can be: (lowest, highest); intervals are clipped to it.
BOUNDS = {"test_accuracy": (0.0, 1.0), "test_macro_f1": (0.0, 1.0)}


def summarize(values, bounds: tuple[float, float] = (0.0, math.inf)) -> dict:
    """``{"n", "mean", "std", "ci95": [lo, hi]}`` of the finite values (None where undefined; the interval from
    :data:`MIN_SEEDS_FOR_INTERVAL` values on, clipped to ``bounds``)."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = len(x)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "ci95": None, "values": []}
    mean = float(x.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "std": None, "ci95": None, "values": x.tolist()}
    std = float(x.std(ddof=1))
    ci = None
    if n >= MIN_SEEDS_FOR_INTERVAL:
        half = float(scipy_stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
        ci = [max(bounds[0], mean - half), min(bounds[1], mean + half)]
    return {"n": n, "mean": mean, "std": std, "ci95": ci, "values": x.tolist()}


def model_label(run: dict) -> str:
    """``vit tiny/7`` for a model with a variant, else the model name."""
    return f"{run['model']} {run['variant']}" if run.get("variant") else run["model"]


def group_key(run: dict) -> tuple[str, str, str]:
    """(model label, framework, mode): what seeds are pooled over (records as ``harness.record`` completes them)."""
    return model_label(run), run["framework"], run["mode"]


def summary_by_group(runs: list[dict]) -> list[dict]:
    """One entry per (model, framework, mode), in first-seen order, each metric summarised over its seeds."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    out = []
    for (model, framework, mode), members in groups.items():
        first = members[0]
        out.append({
            "model": model,
            "framework": framework,
            "mode": mode,
            "seeds": [r["seed"] for r in members],
            "weights": sorted({r["weights"].split(" (seed")[0] for r in members}),
            "params": first.get("params"),
            "device": first.get("device"),
            "devices": first.get("devices", 1),
            "preset": first.get("preset"),
            "metrics": {key: summarize([r.get(key) for r in members], BOUNDS.get(key, (0.0, math.inf)))
                        for key in METRICS},
        })
    return out


def format_mean_std(summary: dict, fmt: str = "{:.4f}", scale: float = 1.0) -> str:
    """``0.9933 +- 0.0002`` (or just the mean for one seed, ``-`` for none)."""
    if summary["mean"] is None:
        return "-"
    text = fmt.format(summary["mean"] * scale)
    if summary["std"] is not None:
        text += " ± " + fmt.format(summary["std"] * scale)
    return text


def format_ci(summary: dict, fmt: str = "{:.4f}", scale: float = 1.0) -> str:
    """``[lo, hi]``; ``-`` for one seed, ``n < 3`` for two (an interval from two runs says nothing)."""
    if summary["ci95"] is None:
        return f"n < {MIN_SEEDS_FOR_INTERVAL}" if 1 < summary["n"] < MIN_SEEDS_FOR_INTERVAL else "-"
    lo, hi = summary["ci95"]
    return f"[{fmt.format(lo * scale)}, {fmt.format(hi * scale)}]"
