"""What makes a phantom pair look and behave like a clinical pair: each effect switchable.

:class:`Realism` is part of a pair's recipe (:func:`~breastlib.phantom.cohort.pair_recipe`):
every field off (:meth:`Realism.off`) reproduces the original phantom bit for bit;
:meth:`Realism.clinical` turns every effect on at the strength calibrated against a real
exam. The effects themselves live where they act: grids and image artefacts in
:mod:`breastlib.phantom.acquisition`, deformations in :mod:`breastlib.phantom.deformation`,
landmarks in :mod:`breastlib.phantom.landmarks`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Realism:
    """Switches and strengths of the phantom's clinical effects (all off by default).

    Attributes
    ----------
    visit_grids
        Each visit and sequence is acquired on its own grid: field of view, in-plane voxel
        size, slice thickness and coverage drawn per image (two visits on different days
        never share a grid).
    multiscale
        The soft-tissue deformation adds finer scales (correlation lengths below the base
        22 mm lattice cell) to the smooth one.
    sliding
        The breast and the fat in front of the pectoralis slide along the chest wall: a
        tangential motion that stops at the muscle surface instead of fading out smoothly.
    shape_change
        The breasts change shape between visits: compression in the coil (medio-lateral
        squeeze, anterior-posterior stretch) that differs from visit to visit.
    fat_sat_residue
        Strength (0-1) of imperfect, spatially varying fat suppression in the
        fat-suppressed series: the fraction of fat signal left where suppression is worst.
    ghosting
        Amplitude (fraction of the image) of phase-encode ghosts: shifted, faint copies of
        the body along the phase-encoding direction.
    motion
        Strength (0-1) of motion artefact: k-space lines acquired with the body shifted,
        which blurs and rings along the phase-encoding direction.
    surface_landmarks
        Add landmarks where registrations fail first: on the skin surface (kinds containing
        ``skin``), on the pectoralis/chest-wall boundary (``chest_wall``, ``pectoralis``)
        and, for a lesion, on its rim (``lesion_rim``).
    """

    visit_grids: bool = False
    multiscale: bool = False
    sliding: bool = False
    shape_change: bool = False
    fat_sat_residue: float = 0.0
    ghosting: float = 0.0
    motion: float = 0.0
    surface_landmarks: bool = False

    @classmethod
    def off(cls) -> Realism:
        """Every effect off: the original phantom."""
        return cls()

    @classmethod
    def clinical(cls) -> Realism:
        """Every effect on, at first estimates of clinical strength: a quarter of the fat
        signal left where suppression is worst, ghosts at 2 % of the image, motion
        corrupting 10 % of the phase-encode lines (``motion`` 0.2).

        Not yet calibrated against the real exam: these strengths will move when they are.
        """
        return cls(visit_grids=True, multiscale=True, sliding=True, shape_change=True,
                   fat_sat_residue=0.25, ghosting=0.02, motion=0.2, surface_landmarks=True)

    @classmethod
    def preset(cls, name: str) -> Realism:
        """:meth:`off` or :meth:`clinical` by name (``"off"``, ``"clinical"``).

        Raises
        ------
        ValueError
            For another name.
        """
        presets = {"off": cls.off, "clinical": cls.clinical}
        if name not in presets:
            raise ValueError(f"realism must be one of {sorted(presets)}, not {name!r}")
        return presets[name]()

    def is_off(self) -> bool:
        """Whether every effect is off (the pair is the original phantom's)."""
        return self == Realism.off()

    def as_dict(self) -> dict:
        """The switches as a JSON-ready dict (for the recipe and ``info.json``)."""
        return asdict(self)
