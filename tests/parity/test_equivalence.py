"""The paired equivalence test: hand-worked intervals, and seed counts that can resolve the declared margins."""

from __future__ import annotations

import math

import pytest

from parity.checks import TRAINING_PLANS
from parity.equivalence import seeds_needed, tost


def test_tost_interval_by_hand():
    result = tost([-0.03, 0.07, 0.0], margin_pp=0.15)
    mean, sd = 0.04 / 3, math.sqrt(sum((d - 0.04 / 3) ** 2 for d in (-0.03, 0.07, 0.0)) / 2)
    half = 2.919985580355516 * sd / math.sqrt(3)  # t(0.95, 2)
    assert result.mean_pp == pytest.approx(mean) and result.sd_pp == pytest.approx(sd)
    assert result.interval_pp == pytest.approx((mean - half, mean + half))
    assert result.equivalent and result.n == 3


def test_three_noisy_seeds_cannot_show_a_small_margin():
    """The ViT's first pilot: per-seed differences -0.16, +0.30, -0.58 pp. Their mean gap is inside 0.15 pp, yet
    the interval is far wider: equivalence is not shown, which a plain |mean gap| <= margin test would miss."""
    result = tost([-0.16, 0.30, -0.58], margin_pp=0.15)
    assert abs(result.mean_pp) < 0.15 and not result.equivalent
    assert result.interval_pp[0] < -0.15 < 0.15 < result.interval_pp[1]
    with pytest.raises(ValueError, match="at least two seeds"):
        tost([0.1], margin_pp=0.5)


@pytest.mark.parametrize("model", TRAINING_PLANS)
def test_declared_seed_counts_resolve_their_margins(model):
    plan = TRAINING_PLANS[model]
    assert len(plan.seeds) >= seeds_needed(plan.pilot_sd_pp, plan.margin_pp)
    assert seeds_needed(0.44, 0.15) > 20  # what the old 0.15 pp criterion would have needed for the ViT
