"""Named parameter profiles for feature extraction and ConvexAdam.

Every output records the profile name and the full parameter set, so a result can be
reproduced from its ``summary.json`` alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from breastlib.errors import BreastlibError


@dataclass(frozen=True)
class ConvexAdamParams:
    """All parameters of MIND features + the two ConvexAdam stages.

    Units: spacings and half-widths in voxels of the fixed grid (``half_width`` in coarse
    voxels of the convex grid), learning rate and regularisation in coarse voxel units.
    """

    mind_radius: int = 1
    mind_dilation: int = 2
    #: Background floor under MIND's input, in normalised intensity (0 = none): see
    #: :func:`breastlib.encoders.mind.mind_ssc`.
    mind_floor: float = 0.0
    feature_scale: float = 1.0
    convex_grid: int = 6
    half_width: int = 4
    coupling: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
    inverse_iterations: int = 15
    cost_smooth: int = 1
    adam_grid: int = 2
    iterations: int = 1000
    learning_rate: float = 3.0
    regularisation: float = 2.0
    smooth_kernel: int = 7
    smooth_passes: int = 5
    #: Keep the stage (no registration, initial alignment, convex, Adam) that an
    #: independent image measure judges best: see :mod:`breastlib.register.guard`.
    guard: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["coupling"] = list(self.coupling)
        return out


PROFILES: dict[str, ConvexAdamParams] = {
    # The released code of Gu et al. 2025 (see book/conventions.md, "Profiles").
    "published": ConvexAdamParams(
        mind_radius=3, mind_dilation=2, feature_scale=10.0, convex_grid=6, half_width=4,
        iterations=1000, learning_rate=3.0, regularisation=2.0,
        smooth_kernel=7, smooth_passes=5, guard=True,
    ),
    # The defaults of the `convexadam` package.
    "convexadam": ConvexAdamParams(
        mind_radius=1, mind_dilation=2, feature_scale=1.0, convex_grid=6, half_width=4,
        iterations=80, learning_rate=1.0, regularisation=1.25,
        smooth_kernel=3, smooth_passes=3,
    ),
    # Default: a small phantom pair in seconds on a laptop CPU, close to `published`, with
    # MIND's background floor (benchmarks/bench_mind_floor.py measures what it changes)
    # and the stage guard (benchmarks/bench_guard.py).
    "fast": ConvexAdamParams(
        mind_radius=1, mind_dilation=2, mind_floor=0.05, feature_scale=10.0, convex_grid=4,
        half_width=4,
        inverse_iterations=10, iterations=80, learning_rate=1.0, regularisation=2.0,
        smooth_kernel=7, smooth_passes=3, guard=True,
    ),
}


def get_profile(name: str, **overrides: Any) -> ConvexAdamParams:
    """Look up a profile by name and apply keyword overrides (unknown keys rejected)."""
    if name not in PROFILES:
        raise BreastlibError(f"unknown profile '{name}': choose from {', '.join(PROFILES)}")
    known = {f.name for f in fields(ConvexAdamParams)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise BreastlibError(f"unknown ConvexAdam parameter(s): {', '.join(unknown)}")
    if "coupling" in overrides:
        overrides["coupling"] = tuple(overrides["coupling"])
    return replace(PROFILES[name], **overrides)
