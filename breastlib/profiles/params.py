"""The parameter set of one registration: features, initial alignment, ConvexAdam.

Every field is named in summary.json and in every study row, so a result can be
reproduced from its parameters alone. The switches below the numbers choose between the
behaviour of the paper's released code (``paper``) and breastlib's corrections; the
defaults are breastlib's, and :mod:`breastlib.profiles.corrections` says what each
switch changes and why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from breastlib.errors import BreastlibError

#: Allowed values of the text switches of :class:`ConvexAdamParams`.
CHOICES: dict[str, tuple[str, ...]] = {
    "init": ("none", "com", "affine"),
    "background": ("keep", "mask"),
    "data_region": ("all", "overlap"),
    "encoder_size": ("reduced", "paper"),
    "slice_fill": ("pad", "stretch"),
    "slice_blend": ("linear", "released"),
    "pca": ("exact", "released"),
    "feature_spread": ("mind", "raw"),
    "cost_padding": ("replicate", "zeros"),
    "coupling_padding": ("replicate", "zeros"),
    "coupling_output": ("argmin", "smoothed"),
    "adam_padding": ("replicate", "zeros"),
    "adam_cost": ("mean", "sum"),
    "grid": ("consistent", "released"),
}


#: Fewest cells along an axis that ``convex_cell_mm`` or ``adam_cell_mm`` may leave.
MIN_CELLS = 8


@dataclass(frozen=True)
class ConvexAdamParams:
    """All parameters of the features, the initial alignment and the two ConvexAdam stages.

    Units: spacings and half-widths in voxels of the fixed grid (``half_width`` in coarse
    voxels of the convex grid), learning rate and regularisation in coarse voxel units.
    The defaults of the switches (``init`` onwards) are breastlib's corrections; the
    ``paper`` profile sets each to the released code's behaviour (see
    :data:`breastlib.profiles.corrections.CORRECTIONS`).

    Attributes
    ----------
    work_spacing
        Register on copies of both images block-averaged to voxels of about this size
        (mm; :func:`breastlib.register.initial.block_factors`), so that the voxel-unit
        parameters below mean about the same on every scan (an encoder's slices are cut
        from the blocks too); the fields are interpolated back to the fixed grid. 0: each
        image's own voxels.
    mind_radius, mind_dilation
        MIND-SSC patch radius and neighbour distance, voxels.
    mind_floor
        Background floor under MIND's input, in normalised intensity (0 = none): see
        :func:`breastlib.encoders.mind.mind_ssc`.
    feature_scale
        Factor on the feature volumes before optimisation (with ``feature_spread="raw"``
        only on MIND and the SAM family, see there).
    convex_grid, half_width
        Pooling factor of the convex step's coarse grid (voxels) and its search
        half-width (coarse voxels).
    convex_cell_mm, adam_cell_mm
        Least size (mm) of a cell of the convex and the Adam grid along each axis: on
        voxels finer than these sizes over ``convex_grid`` and ``adam_grid``, the pooling
        factor of an axis grows to ``floor(cell_mm / spacing)`` (:meth:`pooling_factors`),
        so that the search reach, the smoothing and the regulariser span about as many
        millimetres as on the coarser voxels they were tuned on, and the stages cost
        about as much. 0: the factors are ``convex_grid`` and ``adam_grid`` on every
        grid.
    coupling
        Weights of the coupling rounds.
    inverse_iterations
        Inverse-consistency iterations of the convex step (0: no backward field).
    cost_smooth
        Passes of a 3^3 box filter over each cost map.
    adam_grid, iterations, learning_rate, regularisation
        Adam's resolution divisor, iterations, step size and diffusion weight (the
        guard's judge works on the grid of ``adam_grid`` whatever ``adam_cell_mm``).
    regularisation_cell_mm
        Adam cell size (mm) that ``regularisation`` was tuned on: on finer Adam cells
        (geometric mean of the three sizes) the weight grows by the ratio
        (:meth:`regularisation_weight`). The features pooled onto finer cells change
        faster per millimetre, so the data term pulls harder against the same weight;
        without the rule, the fields of a full-size scan folded where those of the
        coarser scans the profile was tuned on did not. 0: ``regularisation`` on every
        grid.
    smooth_kernel, smooth_passes
        Box filter applied to the field in every Adam iteration.
    adam_smooth_mm
        Least standard deviation (mm) of that filter along each axis: on Adam cells so
        fine that ``smooth_passes`` passes span less, the axis gets as many passes as
        reach it (:meth:`smoothing_passes`), so that the field is as smooth in millimetres
        as on the coarser voxels the profile was tuned on. 0: ``smooth_passes`` on every
        grid.
    guard
        Keep the stage (no registration, initial alignment, convex, Adam) that an
        independent image measure judges best: see :mod:`breastlib.register.guard`.
    init
        Initial alignment: ``"none"``, ``"com"`` (centres of the body masks) or
        ``"affine"``.
    background
        ``"mask"``: each image's intensities outside its own body mask
        (:func:`breastlib.register.initial.foreground_mask`, from the image alone) are set
        to zero before any feature is computed, so noise, ghosts and artefacts in the air
        carry no features; ``"keep"``: the images as they are.
    data_region
        ``"overlap"``: Adam's data term counts only fixed voxels where the moving image,
        after the initial alignment, has data (:meth:`~breastlib.displacement.
        Displacement.coverage`, eroded by :data:`~breastlib.register.pipeline.
        OVERLAP_MARGIN` voxels); elsewhere the field follows the regulariser. ``"all"``:
        every voxel, the edge of the moving field of view included.
    encoder_size
        Encoder input side: ``"paper"`` (each encoder's released size,
        :attr:`~breastlib.encoders.EncoderSpec.published_input`) or ``"reduced"``
        (:attr:`~breastlib.encoders.EncoderSpec.fast_input`).
    input_norm
        Normalise DINOv2 and BiomedCLIP/MedCLIP inputs with their training mean and std
        (``False``: raw [0, 1]). The SAM family is not affected.
    final_norm
        Take BiomedCLIP/MedCLIP tokens after the trunk's final LayerNorm (``False``:
        before it). DINOv2's tokens are always taken after its final norm.
    slice_fill
        ``"pad"``: square pixels, shorter side zero-padded; ``"stretch"``: the slice is
        resized to the square input whatever its aspect ratio.
    slice_blend
        ``"linear"``: features of slices between encoded ones are linear blends, exact
        at every encoded slice; ``"released"``: the last block as the released code
        blends it (see :func:`breastlib.features.layout.slice_weights`).
    pca
        ``"exact"``: centred, exact PCA of the encoded in-image tokens;
        ``"released"``: randomised basis of the centred tokens of every slice, applied
        to the uncentred tokens (see :func:`breastlib.encoders._pca.fit_released_pca`).
    feature_spread
        ``"mind"``: encoder PCA features rescaled jointly to MIND-SSC's spread (std 0.3)
        before ``feature_scale``; ``"raw"``: no rescaling, and ``feature_scale`` applies
        to MIND and the SAM family only (DINOv2 and the CLIP towers keep a factor 1).
    cost_padding
        Border of the convex cost volume: the moving features outside the grid and the
        cost smoothing see ``"replicate"`` (the nearest voxel) or ``"zeros"``.
    coupling_smooth, coupling_padding
        Passes and border of the 3^3 smoothing of the field in each coupling round.
    coupling_output
        The convex step's field: the last coupled ``"argmin"`` or its ``"smoothed"``
        copy.
    tie_break
        Break equal costs towards zero displacement (``False``: the first offset of the
        search cube, ``(-h, -h, -h)``, wins ties).
    adam_padding
        Border of the box smoothing applied to the field in every Adam iteration.
    adam_cost
        Adam's data term: ``"mean"``, the squared feature difference averaged over
        channels and voxels; ``"sum"``, summed over the channels, as the ``convexadam``
        package computes it (its channel mean times 12, the MIND-SSC channels). It sets
        what ``regularisation`` weighs against: with C channels, ``"sum"`` with weight r
        is ``"mean"`` with r / C (see :func:`breastlib.register.adam.adam_step`).
    grid
        ``"consistent"``: one voxel convention everywhere; ``"released"``: the released
        code's (see :func:`breastlib.smoothing.warp_scale`).
    """

    work_spacing: float = 0.0
    mind_radius: int = 1
    mind_dilation: int = 2
    mind_floor: float = 0.0
    feature_scale: float = 1.0
    convex_grid: int = 6
    convex_cell_mm: float = 0.0
    half_width: int = 4
    coupling: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
    inverse_iterations: int = 15
    cost_smooth: int = 1
    adam_grid: int = 2
    adam_cell_mm: float = 0.0
    iterations: int = 1000
    learning_rate: float = 3.0
    regularisation: float = 2.0
    regularisation_cell_mm: float = 0.0
    smooth_kernel: int = 7
    smooth_passes: int = 5
    adam_smooth_mm: float = 0.0
    guard: bool = False
    init: str = "affine"
    background: str = "mask"
    data_region: str = "overlap"
    encoder_size: str = "reduced"
    input_norm: bool = True
    final_norm: bool = True
    slice_fill: str = "pad"
    slice_blend: str = "linear"
    pca: str = "exact"
    feature_spread: str = "mind"
    cost_padding: str = "replicate"
    coupling_smooth: int = 2
    coupling_padding: str = "replicate"
    coupling_output: str = "argmin"
    tie_break: bool = True
    adam_padding: str = "replicate"
    adam_cost: str = "mean"
    grid: str = "consistent"

    def __post_init__(self) -> None:
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise BreastlibError(
                    f"{name}={value!r} is not one of {', '.join(map(repr, allowed))}")
        lengths = {"work_spacing": "a voxel size in mm >= 0 (0: each image's own voxels)",
                   "convex_cell_mm": "a cell size in mm >= 0 (0: off)",
                   "adam_cell_mm": "a cell size in mm >= 0 (0: off)",
                   "adam_smooth_mm": "a smoothing width in mm >= 0 (0: off)",
                   "regularisation_cell_mm": "a cell size in mm >= 0 (0: off)"}
        for name, what in lengths.items():
            size = getattr(self, name)
            if isinstance(size, bool) or not isinstance(size, int | float) or not (
                    math.isfinite(size) and size >= 0):
                raise BreastlibError(f"{name}={size!r} must be {what}")

    def pooling_factors(self, spacing: Sequence[float], shape: Sequence[int]
                        ) -> dict[str, tuple[int, int, int]]:
        """The pooling factors of the convex and the Adam grid on a working grid.

        Along each axis, ``grid`` (``convex_grid`` or ``adam_grid``) or, where the voxels
        are finer, ``floor(cell_mm / spacing)`` (``convex_cell_mm``, ``adam_cell_mm``),
        whichever is larger; a cell size never makes an axis fewer than
        :data:`MIN_CELLS` cells long.

        Parameters
        ----------
        spacing
            ``(3,)`` voxel size (mm) of the grid the stages run on.
        shape
            ``(3,)`` voxels of that grid.

        Returns
        -------
        dict
            ``{"convex": (fx, fy, fz), "adam": (fx, fy, fz)}``.
        """
        def factors(grid: int, cell_mm: float) -> tuple[int, int, int]:
            if cell_mm <= 0:
                return (grid, grid, grid)
            return tuple(max(grid, min(math.floor(cell_mm / float(s) + 1e-9), n // MIN_CELLS))
                         for s, n in zip(spacing, shape, strict=True))  # type: ignore[return-value]

        return {"convex": factors(self.convex_grid, self.convex_cell_mm),
                "adam": factors(self.adam_grid, self.adam_cell_mm)}

    def smoothing_passes(self, spacing: Sequence[float], adam_factors: Sequence[int]
                         ) -> tuple[int, int, int]:
        """Passes of Adam's box filter along each axis.

        One pass of a box of ``k = smooth_kernel`` cells has a variance of
        ``(k^2 - 1) / 12`` cells^2, and passes add variances; an axis whose cells are
        ``h`` mm (its voxel size times its Adam pooling factor) gets ``smooth_passes`` or,
        where those span a standard deviation under ``adam_smooth_mm``,
        ``ceil((adam_smooth_mm / h)^2 / ((k^2 - 1) / 12))``, whichever is larger.

        Parameters
        ----------
        spacing
            ``(3,)`` voxel size (mm) of the grid the stages run on.
        adam_factors
            ``(3,)`` Adam pooling factors on that grid (``pooling_factors()["adam"]``).

        Returns
        -------
        tuple of int
            ``(px, py, pz)``.
        """
        least = self.smooth_passes
        if self.adam_smooth_mm <= 0 or self.smooth_kernel <= 1:
            return (least, least, least)
        per_pass = (self.smooth_kernel ** 2 - 1) / 12.0
        return tuple(max(least, math.ceil(
            (self.adam_smooth_mm / (float(s) * int(f))) ** 2 / per_pass - 1e-9))
            for s, f in zip(spacing, adam_factors, strict=True))  # type: ignore[return-value]

    def regularisation_weight(self, spacing: Sequence[float], adam_factors: Sequence[int]
                              ) -> float:
        """Adam's diffusion weight on a working grid.

        ``regularisation`` times ``max(1, regularisation_cell_mm / h)``, where ``h`` is the
        geometric mean of the Adam cell sizes (each axis's voxel size times its Adam
        pooling factor); ``regularisation`` itself where ``regularisation_cell_mm`` is 0
        or the cells are at least that large. ``spacing`` and ``adam_factors`` are those
        of :meth:`smoothing_passes`.

        Returns
        -------
        float
            The weight Adam's diffusion penalty runs with.
        """
        if self.regularisation_cell_mm <= 0:
            return self.regularisation
        cell = math.prod(float(s) * int(f) for s, f in zip(spacing, adam_factors, strict=True))
        ratio = self.regularisation_cell_mm / cell ** (1.0 / 3.0)
        return self.regularisation * ratio if ratio > 1.0 else self.regularisation

    def to_dict(self) -> dict[str, Any]:
        """Every parameter by name (``coupling`` as a list), as summary.json records it."""
        out = asdict(self)
        out["coupling"] = list(self.coupling)
        return out


def field_names() -> set[str]:
    """Names of every :class:`ConvexAdamParams` field."""
    return {f.name for f in fields(ConvexAdamParams)}
