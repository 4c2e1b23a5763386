"""Encoder settings of one feature run: input size, slice step, PCA, and how slices are
shown to the encoder and blended back.

A profile (:data:`breastlib.profiles.PROFILES`) gives the defaults; explicit values take
precedence. :func:`encoded_slices` says which axial slices those settings encode.
"""

from __future__ import annotations

from dataclasses import dataclass

from breastlib.encoders import get_spec
from breastlib.errors import BreastlibError
from breastlib.profiles import ConvexAdamParams, get_profile

#: Upper bound on tokens per forward pass (bounds activation memory on CPU).
MAX_BATCH_TOKENS = 8192


@dataclass(frozen=True)
class FeatureSettings:
    """Resolved encoder settings for one run.

    Attributes
    ----------
    input_size
        Square encoder input side, pixels.
    slice_step
        Encode every ``slice_step``-th axial slice (plus the last).
    pca_dims
        Output channels after PCA.
    input_norm
        Normalise DINOv2 and CLIP-tower inputs by their training mean and std (``False``:
        raw [0, 1], as released).
    final_norm
        CLIP-tower tokens after the final LayerNorm (``False``: before it, as released).
    fill
        ``"pad"`` (square pixels, zero-padded) or ``"stretch"`` (resized to the square
        input, as released).
    blend
        ``"linear"`` or ``"released"`` slice interpolation
        (:func:`breastlib.features.layout.slice_weights`).
    pca
        ``"exact"`` (centred, exact) or ``"released"``
        (:func:`breastlib.encoders._pca.fit_released_pca`).
    """

    input_size: int
    slice_step: int
    pca_dims: int
    input_norm: bool = True
    final_norm: bool = True
    fill: str = "pad"
    blend: str = "linear"
    pca: str = "exact"


def resolve_settings(
    method: str,
    profile: str = "fast",
    *,
    input_size: int | None = None,
    slice_step: int | None = None,
    pca_dims: int | None = None,
    params: ConvexAdamParams | None = None,
) -> FeatureSettings:
    """Profile defaults for an encoder, with explicit values taking precedence.

    Profiles with ``encoder_size="paper"`` (``paper``, ``corrected``) use the released
    input sizes: SAM 1024 px, DINOv2 1792 px, BiomedCLIP 224 px; ``fast`` and
    ``convexadam`` the reduced input of :attr:`EncoderSpec.fast_input`. All encode every
    6th slice with the released PCA sizes 3/3/3/8/12; the profile's switches say how
    slices are shown, blended and reduced.

    Parameters
    ----------
    method
        2-D encoder name (:func:`breastlib.encoders.list_methods`, not ``mind``).
    profile
        A name of :func:`breastlib.profiles.profile_names`.
    input_size, slice_step, pca_dims
        Overrides: input side in pixels (a positive multiple of the patch size), slices
        between encoded slices, PCA output channels.
    params
        The resolved parameters, when they carry overrides of the profile; default
        ``get_profile(profile)``.

    Returns
    -------
    FeatureSettings
        The resolved values.

    Raises
    ------
    BreastlibError
        Unknown profile or encoder, or a value out of range.
    """
    params = params if params is not None else get_profile(profile)
    spec = get_spec(method)
    size = input_size or (spec.published_input if params.encoder_size == "paper"
                          else spec.fast_input)
    if size % spec.patch_size or size < spec.patch_size:
        raise BreastlibError(
            f"input size {size} for '{method}' must be a positive multiple of its patch size "
            f"{spec.patch_size}"
        )
    step = int(slice_step or 6)
    dims = int(pca_dims or spec.pca_dims)
    if step < 1 or dims < 1:
        raise BreastlibError("slice_step and pca_dims must be positive")
    return FeatureSettings(int(size), step, dims, input_norm=params.input_norm,
                           final_norm=params.final_norm, fill=params.slice_fill,
                           blend=params.slice_blend, pca=params.pca)


def encoded_slices(depth: int, step: int) -> list[int]:
    """Indices of the slices to encode: ``0, step, 2 step, ...`` and always ``depth - 1``.

    Parameters
    ----------
    depth
        Number of axial slices (``Z``).
    step
        Slices between two encoded slices (>= 1).

    Returns
    -------
    list of int
        Increasing indices in ``[0, depth - 1]``, the last one included.
    """
    index = list(range(0, depth, step))
    if index[-1] != depth - 1:
        index.append(depth - 1)
    return index
