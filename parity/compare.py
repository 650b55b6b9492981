"""Compare two trees of arrays: shapes first, then max|diff| with the worst path named.

Follows the Hugging Face PT<->Flax equivalence tests: a mismatch in keys or
shapes is reported before any number, and a numerical failure names the path
where the difference is largest.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Comparison:
    max_abs_diff: float  # over all paths (scaled, when ``scaled`` is set)
    worst_path: str
    tolerance: float
    passed: bool
    per_path: dict  # path -> max|diff| (scaled when ``scaled``), in the reference's order
    scaled: bool = False  # differences divided by max(1, max|reference|) per path

    @property
    def first_failing_path(self) -> str | None:
        """The first path, in the reference's order (for a model: forward order), over tolerance."""
        return next((p for p, d in self.per_path.items() if d > self.tolerance), None)

    def message(self) -> str:
        what = "max|diff|/max(1,|ref|)" if self.scaled else "max|diff|"
        if self.passed:
            return f"{what} {self.max_abs_diff:.3g} <= tolerance {self.tolerance:.0e} (worst at {self.worst_path})"
        first = self.first_failing_path
        return (f"{first}: {what} {self.per_path[first]:.3g} > tolerance {self.tolerance:.0e} "
                f"(first path over tolerance; worst {self.max_abs_diff:.3g} at {self.worst_path})")


class TreeMismatch(ValueError):
    """Keys or shapes differ between the two trees; the message names the path."""


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def compare_trees(actual: dict, reference: dict, *, tolerance: float, scaled: bool = False) -> Comparison:
    """Compare two flat ``{path: array}`` dicts.

    Raises :class:`TreeMismatch` when the keys or any shape differ. Otherwise
    returns the largest max|diff| over all paths and where it occurs; with
    ``scaled``, each path's difference is divided by ``max(1, max|reference|)``
    so large-magnitude tensors (gradients, sums) are judged relative to their size.
    """
    missing, extra = sorted(set(reference) - set(actual)), sorted(set(actual) - set(reference))
    if missing or extra:
        raise TreeMismatch(f"keys differ: missing {missing[:5]}, unexpected {extra[:5]}")
    per_path = {}
    for path in reference:
        a, r = _as_numpy(actual[path]), _as_numpy(reference[path])
        if a.shape != r.shape:
            raise TreeMismatch(f"{path}: shape {a.shape} != reference shape {r.shape}")
        diff = float(np.max(np.abs(a - r))) if a.size else 0.0
        if not np.isfinite(diff):
            diff = float("inf")
        if scaled and r.size:
            diff /= max(1.0, float(np.max(np.abs(r))))
        per_path[path] = diff
    worst = max(per_path, key=per_path.get) if per_path else ""
    max_diff = per_path.get(worst, 0.0)
    return Comparison(max_diff, worst, tolerance, max_diff <= tolerance, per_path, scaled)
