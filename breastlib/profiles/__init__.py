"""Named parameter profiles for feature extraction and ConvexAdam.

* ``paper``: the released pipeline of Gu et al. 2025 as it was, its quirks included
  (see :mod:`breastlib.profiles.corrections` for each one and :data:`NOT_REPRODUCED` for
  what still differs); for a GPU.
* ``corrected``: the paper's scale (input sizes, 1000 Adam iterations, MIND radius 3,
  ...) with every breastlib correction; for a GPU.
* ``convexadam``: the defaults of the ``convexadam`` package (its Adam cost, summed over
  the feature channels, and no initial alignment), with breastlib's corrections.
* ``fast`` (default): a small phantom pair in seconds on a laptop CPU, close to
  ``corrected``.
* ``paper+<correction>``: ``paper`` with one correction switched on (the ablation),
  e.g. ``paper+grid``; :func:`profile_names` lists them all.

Every output records the profile name and the full parameter set, so a result can be
reproduced from its ``summary.json`` alone.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from breastlib.errors import BreastlibError
from breastlib.profiles.corrections import (
    CORRECTIONS,
    NOT_REPRODUCED,
    Correction,
    correction_names,
    correction_table,
    get_correction,
)
from breastlib.profiles.params import CHOICES, ConvexAdamParams, field_names

PROFILES: dict[str, ConvexAdamParams] = {
    # The released code of Gu et al. 2025, quirks included (breastlib/profiles/corrections.py).
    "paper": ConvexAdamParams(
        mind_radius=3, mind_dilation=2, mind_floor=0.0, feature_scale=10.0, convex_grid=6,
        half_width=4, inverse_iterations=15, cost_smooth=2, adam_grid=2, iterations=1000,
        learning_rate=3.0, regularisation=2.0, smooth_kernel=7, smooth_passes=5,
        guard=False, init="none", background="keep", data_region="all", encoder_size="paper",
        input_norm=False, final_norm=False,
        slice_fill="stretch", slice_blend="released", pca="released", feature_spread="raw",
        cost_padding="zeros", coupling_smooth=1, coupling_padding="zeros",
        coupling_output="smoothed", tie_break=False, adam_padding="zeros", grid="released",
    ),
    # The paper's scale with every breastlib correction (= paper + all of CORRECTIONS).
    "corrected": ConvexAdamParams(
        mind_radius=3, mind_dilation=2, feature_scale=10.0, convex_grid=6, half_width=4,
        iterations=1000, learning_rate=3.0, regularisation=2.0,
        smooth_kernel=7, smooth_passes=5, guard=True, encoder_size="paper",
    ),
    # The defaults of the `convexadam` package (0.2.0, convex_adam_pt): no initial
    # alignment, and Adam's SSD summed over the 12 MIND-SSC channels as the package does
    # (its channel mean x 12), which is what its lambda_weight 1.25 is weighed against;
    # with breastlib's channel mean, 1.25 regularised 12 times as strongly. On a small
    # longitudinal phantom pair the mean landmark error was 3.05 mm with the mean, 1.23 mm
    # with the sum, 1.09 mm with the sum and no initial alignment (the package: 1.22 mm).
    # The other switches keep breastlib's corrections.
    "convexadam": ConvexAdamParams(
        mind_radius=1, mind_dilation=2, feature_scale=1.0, convex_grid=6, half_width=4,
        iterations=80, learning_rate=1.0, regularisation=1.25,
        smooth_kernel=3, smooth_passes=3, init="none", adam_cost="sum",
    ),
    # Default: a small phantom pair in seconds on a laptop CPU, close to `corrected`, with
    # MIND's background floor (benchmarks/bench_mind_floor.py measures what it changes);
    # benchmarks/bench_fixes.py measures its fixes against gross failures (the background
    # masks, the affine start, the stage guard). Its voxel-unit settings were tuned on the
    # small phantom's voxels of 2.2-3.5 mm (Adam cells of 4.4-7 mm). On finer voxels the
    # stage grids keep cells of at least 6 mm (convex) and 3 mm (Adam), Adam's smoothing
    # at least 15 mm wide and its regulariser scaled to cells of 4.4 mm: on every grid of
    # 2.2 mm voxels or coarser (the small phantom, the real exam's 3 mm build) none of the
    # four changes anything (nor does the body mask's ghost opening, which acts on the
    # same fine voxels). On eight full-size phantom pairs they kept Adam and registered in
    # 51-140 s, 1.6-2.9 times faster than the voxel-unit settings alone on the scan's own
    # voxels, with a lower dense error on every pair (benchmarks/bench_work_spacing.py, the
    # performance appendix). work_spacing=2.5 (block averages) is faster still, and less
    # accurate.
    "fast": ConvexAdamParams(
        mind_radius=1, mind_dilation=2, mind_floor=0.05, feature_scale=10.0, convex_grid=4,
        convex_cell_mm=6.0, half_width=4,
        inverse_iterations=10, adam_cell_mm=3.0, iterations=80, learning_rate=1.0,
        regularisation=2.0, regularisation_cell_mm=4.4,
        smooth_kernel=7, smooth_passes=3, adam_smooth_mm=15.0, guard=True,
    ),
}

#: Names that no longer resolve, with the reason given to whoever asks for them.
RENAMED = {
    "published": "the profile 'published' was renamed: it was never the released pipeline. "
                 "Use 'paper' for the paper's released code as it was, or 'corrected' for "
                 "the paper's scale with breastlib's corrections (what 'published' ran)",
}


def profile_names() -> list[str]:
    """Every name :func:`get_profile` accepts: the profiles, then ``paper+<correction>``."""
    return [*PROFILES, *(f"paper+{name}" for name in correction_names())]


def get_profile(name: str, **overrides: Any) -> ConvexAdamParams:
    """Look up a profile by name and apply keyword overrides (unknown keys rejected).

    Parameters
    ----------
    name
        A key of :data:`PROFILES`, or ``paper+<correction>`` with a name of
        :data:`~breastlib.profiles.corrections.CORRECTIONS`.
    **overrides
        Any :class:`ConvexAdamParams` field.

    Raises
    ------
    BreastlibError
        Unknown or renamed profile, unknown parameter, or a switch out of its choices.
    """
    if name in RENAMED:
        raise BreastlibError(RENAMED[name])
    base, plus, correction = name.partition("+")
    if plus:
        if base != "paper" or correction not in correction_names():
            raise BreastlibError(
                f"unknown profile '{name}': 'paper+' takes one correction of "
                f"{', '.join(correction_names())}")
        params = replace(PROFILES["paper"], **get_correction(correction).as_dict())
    elif name in PROFILES:
        params = PROFILES[name]
    else:
        raise BreastlibError(
            f"unknown profile '{name}': choose from {', '.join(PROFILES)} or "
            f"paper+<correction>")
    unknown = sorted(set(overrides) - field_names())
    if unknown:
        raise BreastlibError(f"unknown ConvexAdam parameter(s): {', '.join(unknown)}")
    if "coupling" in overrides:
        overrides["coupling"] = tuple(overrides["coupling"])
    return replace(params, **overrides)


__all__ = [
    "CHOICES", "CORRECTIONS", "NOT_REPRODUCED", "PROFILES", "RENAMED", "ConvexAdamParams",
    "Correction", "correction_names", "correction_table", "get_correction", "get_profile",
    "profile_names",
]
