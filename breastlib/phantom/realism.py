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

#: Clinical strengths, set from the calibration against a real exam (the cohort chapter's
#: "Calibrated against a real exam", measured on the fat-suppressed T1 at 3 mm voxels).
#: With 80 % of the fat signal left where suppression is worst, the phantom's fat shading
#: (p90/p10 of the dark class 1.30 against the exam's 1.33), skin rim (0.37 against 0.37)
#: and texture power come close to the exam's; 25 % left too little (1.14, 0.49, 5.8x the
#: texture power). The original noise was 2.5x the exam's relative to the breast's bright
#: tissue; at 0.4 of it the noise in the air relative to the body's median is the exam's
#: (0.12-0.13 against 0.15).
FAT_SAT_RESIDUE = 0.8
NOISE_SCALE = 0.4


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
    noise_scale
        Factor on the acquisition's MRI noise (1: the original 2 % of fat signal).
    same_regime
        Every task draws its deformation in the ``visit`` regime: the modality task moves
        like the sequence task, so that the modality is the only difference between them
        (the original phantom gives the modality task the larger ``position`` regime).
    """

    visit_grids: bool = False
    multiscale: bool = False
    sliding: bool = False
    shape_change: bool = False
    fat_sat_residue: float = 0.0
    ghosting: float = 0.0
    motion: float = 0.0
    surface_landmarks: bool = False
    noise_scale: float = 1.0
    same_regime: bool = False

    @classmethod
    def off(cls) -> Realism:
        """Every effect off: the original phantom."""
        return cls()

    @classmethod
    def clinical(cls) -> Realism:
        """Every effect on, at the strengths set from the real exam's measures
        (:mod:`breastlib.phantom.calibration`; see :data:`FAT_SAT_RESIDUE` and
        :data:`NOISE_SCALE`): 80 % of the fat signal left where fat suppression is worst,
        ghosts at 2 % of the image, motion corrupting 10 % of the phase-encode lines
        (``motion`` 0.2), 0.4 of the original noise; every task in the ``visit`` regime.

        This is the default of :func:`~breastlib.phantom.pair.make_pair`,
        :func:`~breastlib.phantom.cohort.make_cohort` and ``breastlib phantom``.
        """
        return cls(visit_grids=True, multiscale=True, sliding=True, shape_change=True,
                   fat_sat_residue=FAT_SAT_RESIDUE, ghosting=0.02, motion=0.2,
                   surface_landmarks=True, noise_scale=NOISE_SCALE, same_regime=True)

    @classmethod
    def default(cls) -> Realism:
        """The realism of a pair made without naming one: :meth:`clinical`."""
        return cls.clinical()

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

    def deformation_switches(self) -> dict[str, bool]:
        """The keywords of :func:`~breastlib.phantom.deformation.draw_deformation` this
        realism turns on (none when off, so that the call is the original phantom's)."""
        switches = {"multiscale": self.multiscale, "sliding": self.sliding,
                    "shape_change": self.shape_change}
        return {name: True for name, on in switches.items() if on}

    def is_off(self) -> bool:
        """Whether every effect is off (the pair is the original phantom's)."""
        return self == Realism.off()

    def as_dict(self) -> dict:
        """The switches as a JSON-ready dict (for the recipe and ``info.json``)."""
        return asdict(self)
