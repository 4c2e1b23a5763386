"""Where breastlib departs from the paper's released code, one correction at a time.

The released code is Gu et al. 2025, github.com/mazurowski-lab/Foundation-based-reg; file
and function names below are that repository's. The ``paper`` profile sets every switch
of :class:`~breastlib.profiles.params.ConvexAdamParams` to the released behaviour; each
:class:`Correction` is the set of switches that turns one behaviour into breastlib's, and
``paper+<name>`` (for instance ``paper+grid``) is ``paper`` with that one correction, the
unit of the ablation (``benchmarks/bench_paper_ablation.py``). ``paper`` with every
correction is ``corrected``.

:data:`NOT_REPRODUCED` lists what ``paper`` still does differently from the released code,
with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Correction:
    """One departure from the released code.

    Attributes
    ----------
    name
        Short name, used in profile names (``paper+<name>``).
    overrides
        ``(field, value)`` pairs of :class:`~breastlib.profiles.params.ConvexAdamParams`
        that switch the correction on.
    released
        What the released code does (file and function named).
    ours
        What breastlib does instead.
    why
        Why the change was made.
    """

    name: str
    overrides: tuple[tuple[str, Any], ...]
    released: str
    ours: str
    why: str

    def as_dict(self) -> dict[str, Any]:
        """The overrides as keyword arguments."""
        return dict(self.overrides)


CORRECTIONS: tuple[Correction, ...] = (
    Correction(
        "input-norm", (("input_norm", True),),
        "DINOv2 and BiomedCLIP get the slice as raw [0, 1] values on three channels: the "
        "`transform` of config-dinov2-task1.py and config-biomedclip-task1.py is empty "
        "(inference_reg.py, foundReg.extract_encoder_feature). SAM and SSLSAM are "
        "normalised with ImageNet statistics and MedSAM is not, as in breastlib.",
        "DINOv2 normalised with ImageNet mean and std, BiomedCLIP and MedCLIP with CLIP's.",
        "Each network was trained on inputs normalised this way; raw inputs shift every "
        "activation away from what the network has seen.",
    ),
    Correction(
        "final-norm", (("final_norm", True),),
        "BiomedCLIP/MedCLIP tokens are the Hugging Face vision model's `last_hidden_state`, "
        "taken before the final LayerNorm (inference_reg.py, "
        "foundReg.extract_encoder_feature).",
        "Tokens after the trunk's final LayerNorm, as for DINOv2 (`x_norm_patchtokens`).",
        "The same treatment for both ViT families; without the norm, the channels of the "
        "residual stream keep very different scales and the largest can steer the PCA.",
    ),
    Correction(
        "pca", (("pca", "exact"),),
        "`torch.pca_lowrank(features, q=k)` (utils/img_operations.py, "
        "pca_lowrank_transform): a randomised basis (2 power iterations, no "
        "oversampling, unseeded) of the centred tokens of every slice (the interpolated "
        "ones included), by which the uncentred tokens are multiplied.",
        "Exact eigendecomposition of the covariance of the in-image tokens of the "
        "encoded slices; the tokens are centred before projecting.",
        "The same features on every run; a centred projection has zero mean, which is "
        "what padding a feature volume assumes.",
    ),
    Correction(
        "spread", (("feature_spread", "mind"),),
        "Features as they come: MIND x10, SAM-family tokens x10, DINOv2 and BiomedCLIP "
        "x1 (inference_reg.py, foundReg.case_inference and extract_encoder_feature).",
        "Encoder PCA features rescaled jointly (one factor for both images) to a standard "
        "deviation of 0.3, MIND-SSC's, then x10 for every method.",
        "The regularisation and coupling weights are absolute: without a common spread "
        "each encoder runs with a different effective regularisation, and the ranking "
        "of encoders reflects their feature scale.",
    ),
    Correction(
        "init", (("init", "affine"),),
        "No initial alignment: ConvexAdam starts from the identity (inference_reg.py, "
        "`disp_init = None`).",
        "An affine alignment by mutual information (SimpleITK, three resolutions) first.",
        "The convex search reaches 4 coarse voxels (24 voxels) at most; a larger offset "
        "between the images (another position, another scanner) is out of its reach. "
        "Aligning the centres of the body masks, tried first, moved the images farther "
        "apart than no alignment on all 8 of the book's clinical phantom pairs (dense error "
        "13-24 mm against 8-14 mm): two acquisitions cut the torso at different places, "
        "and the centre moves with the cut. The affine alignment came within 2.5-6 mm.",
    ),
    Correction(
        "background", (("background", "mask"), ("data_region", "overlap")),
        "Features are computed on the whole image, air included, and Adam matches every "
        "voxel (inference_reg.py; utils/convexAdam_3D.py, convex_adam_3d_param).",
        "Each image's intensities outside its own body mask are set to zero before the "
        "features; Adam's data term counts only voxels where the moving image has data, "
        "4 voxels inside its field of view.",
        "Noise, ghosts and motion artefacts in MR air make features where CT air has "
        "none, and the edge of a field of view that cuts through the body looks like a "
        "body outline: both pulled tissue into the air and folded the field on the "
        "book's clinical phantom pairs.",
    ),
    Correction(
        "cost", (("cost_smooth", 1), ("cost_padding", "replicate")),
        "The moving features are zero-padded for the search, and each cost map is "
        "averaged twice by a zero-padded 3^3 box (convex_adam_utils.py, correlate).",
        "One 3^3 pass; the image border is continued by its nearest voxel in both.",
        "Zero padding makes offsets that look past the border cheaper or dearer "
        "depending on the features there; the coupling rounds add the smoothness.",
    ),
    Correction(
        "coupling",
        (("coupling_smooth", 2), ("coupling_padding", "replicate"),
         ("coupling_output", "argmin"), ("tie_break", True)),
        "Each coupling round couples to the field averaged once by a zero-padded 3^3 box, "
        "and the smoothed field is returned; on equal costs the first offset of the "
        "search cube, (-4, -4, -4), wins (convex_adam_utils.py, coupled_convex).",
        "Two passes with the border continued; the last coupled argmin is returned; "
        "equal costs go to the smallest displacement.",
        "Zero padding pulls the field towards zero along the grid's border, and where "
        "features carry no information (air) ties would pick a corner of the cube.",
    ),
    Correction(
        "adam-padding", (("adam_padding", "replicate"),),
        "Every Adam iteration smooths the field with five zero-padded 7^3 average pools "
        "(utils/convexAdam_3D.py, convex_adam_3d_param), pulling it towards zero within "
        "about 15 coarse voxels of the border.",
        "The same five 7^3 passes with the border continued.",
        "Motion at the edge of the field of view is as likely as inside it.",
    ),
    Correction(
        "grid", (("grid", "consistent"),),
        "Displacements are divided by (n-1)/2 but sampled with align_corners=False, so a "
        "warp moves by n/(n-1) times the returned field; coarse grids drop the trailing "
        "voxels and are resized back to the image size; samples outside the grid are "
        "zero (utils/convexAdam_3D.py, convex_adam_3d_param; convex_adam_utils.py, "
        "inverse_consistency).",
        "One voxel convention throughout; coarse grids are padded to a whole number of "
        "cells; samples outside take the border value.",
        "The field returned is the field that was optimised.",
    ),
    Correction(
        "slice-blend", (("slice_blend", "linear"),),
        "Slices after the second-to-last encoded slice p are blended with the divisor "
        "Z - p instead of Z - 1 - p, so the encoded last slice is overwritten by "
        "((L - 1) last + previous) / L, L = Z - p (inference_reg.py, "
        "foundReg.encode_3D_gap).",
        "Linear interpolation between encoded slices, exact at each of them.",
        "Encoded slices keep their own features.",
    ),
    Correction(
        "aspect", (("slice_fill", "pad"),),
        "Each slice is resized to the square input whatever its shape "
        "(inference_reg.py, foundReg.encode_3D_gap): a non-square field of view is "
        "stretched.",
        "Scaled by its longer physical side, the shorter side zero-padded: square pixels.",
        "Anatomy keeps its shape, and a token covers the same millimetres in both "
        "directions.",
    ),
    Correction(
        "guard", (("guard", True),),
        "The field after Adam is returned whatever it is.",
        "The stage (none, initial alignment, convex, Adam) that an independent MIND-SSC "
        "measure judges best is kept (breastlib.register.guard).",
        "Where features carry no information, Adam drifts far from where it started.",
    ),
)

#: What ``paper`` still does differently from the released code: ``(step, released,
#: breastlib)``.
NOT_REPRODUCED: tuple[tuple[str, str, str], ...] = (
    ("slice orientation",
     "the file's voxel order: array axis 0 as rows (inference_reg.py, encode_3D_gap)",
     "radiological (anterior up, the patient's right on the image's left), the same for "
     "every file"),
    ("intensity",
     "images preprocessed to [0, 1] before the pipeline (not part of the released code)",
     "robust normalisation of each image (breastlib.intensity.normalise_intensity)"),
    ("empty slices",
     "slices of constant intensity in the fixed image are removed and get zero features "
     "(utils/img_operations.py, remove_uniform_intensity_slices)",
     "every slice is kept"),
    ("resampling",
     "scikit-image resize with anti-aliasing (slices to the input, features back)",
     "torch bilinear resampling (antialiased when shrinking), features at token centres"),
    ("precision",
     "the convex step's offsets and inverse consistency in float16 on the GPU",
     "float32 throughout"),
    ("randomness",
     "torch.pca_lowrank draws from the unseeded global generator",
     "the same draw from a generator seeded by the run's seed, so a run repeats"),
    ("DINOv2 position embedding",
     "resized bicubically with antialiasing (dinov2/configs/eval/vitl14_reg4_pretrain.yaml: "
     "interpolate_antialias true; dinov2/models/vision_transformer.py, "
     "interpolate_pos_encoding)",
     "bicubic without antialiasing (breastlib.encoders.base.resize_pos_grid); the two "
     "kernels differ even when enlarging"),
    ("BiomedCLIP LayerNorm epsilon",
     "1e-12 in the Hugging Face port the released code loads (chuhac/BiomedCLIP-vit-bert-hf, "
     "as in MedCLIP-SAMv2's saliency_maps/model/modeling_biomed_clip.py)",
     "1e-6, timm's trunk (differences of about 1e-5)"),
)


def correction_names() -> list[str]:
    """Names of :data:`CORRECTIONS`, in table order."""
    return [c.name for c in CORRECTIONS]


def get_correction(name: str) -> Correction:
    """The :class:`Correction` called ``name`` (``KeyError`` when there is none)."""
    for correction in CORRECTIONS:
        if correction.name == name:
            return correction
    raise KeyError(name)


def correction_table() -> list[dict[str, str]]:
    """One row per correction: ``correction``, ``released code``, ``breastlib``, ``why``,
    ``switch`` (the overrides), ready for ``pandas.DataFrame``."""
    return [{
        "correction": c.name,
        "released code": c.released,
        "breastlib": c.ours,
        "why": c.why,
        "switch": ", ".join(f"{k}={v!r}" for k, v in c.overrides),
    } for c in CORRECTIONS]
