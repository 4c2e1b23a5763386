"""A verdict on one registration: ``ok``, ``folded`` or ``worse_than_identity``.

Registrations that fold or make things worse are results, not errors: they are written,
flagged and shown. The thresholds are defined here once (the folding limit in
:mod:`breastlib.displacement`, shared with the registration guard; all stated in the book's
conventions appendix, "Metrics"). Identity's values come from the same pair before
registration (the zero field), so no other row is needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from breastlib.displacement import FOLDING_LIMIT_PCT

#: Slack before a metric counts as worse than identity's: dense or landmark error (mm).
ERROR_SLACK_MM = 0.1
#: ... breast Dice (absolute).
DICE_SLACK = 0.01
#: ... breast HD95 (mm).
HD95_SLACK_MM = 1.0

VERDICTS = ("ok", "folded", "worse_than_identity")
__all__ = ["FOLDING_LIMIT_PCT", "VERDICTS", "verdict", "worse_than_identity"]


def _finite(value: Any) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def worse_than_identity(metrics: Mapping[str, Any]) -> list[str]:
    """The metrics on which a registration is worse than no registration.

    Parameters
    ----------
    metrics
        A row of :func:`breastlib.evaluate.pair.pair_metrics` with its ``*_before``
        values (identity's on the same pair).

    Returns
    -------
    list of str
        Names of the metrics that got worse: the primary metric (``field_error_mean_mm``,
        or ``tre_mean_after_mm`` where no true field is known), ``dice_breast``,
        ``hd95_breast_mm``. Empty when none did or none is known.
    """
    worse = []
    primary = ("field_error_mean_mm", "field_error_mean_before_mm")
    if not _finite(metrics.get(primary[0])):
        primary = ("tre_mean_after_mm", "tre_mean_before_mm")
    checks = (
        (*primary, ERROR_SLACK_MM, 1),
        ("dice_breast", "dice_breast_before", DICE_SLACK, -1),
        ("hd95_breast_mm", "hd95_breast_mm_before", HD95_SLACK_MM, 1),
    )
    for after_key, before_key, slack, sign in checks:
        after, before = metrics.get(after_key), metrics.get(before_key)
        if _finite(after) and _finite(before) and sign * (after - before) > slack:
            worse.append(after_key)
    return worse


def verdict(metrics: Mapping[str, Any]) -> str:
    """``folded`` (non-positive Jacobian over more than :data:`FOLDING_LIMIT_PCT` % of the
    body), else ``worse_than_identity`` (see :func:`worse_than_identity`), else ``ok``."""
    folding = metrics.get("jac_nonpos_pct")
    if _finite(folding) and folding > FOLDING_LIMIT_PCT:
        return "folded"
    return "worse_than_identity" if worse_than_identity(metrics) else "ok"
