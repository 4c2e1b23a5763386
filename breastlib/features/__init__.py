"""Volume -> dense feature volume with a frozen 2-D encoder (or 3-D MIND-SSC).

The steps, for a fixed and a moving volume already on one grid with intensities in
[0, 1]:

1. choose the axial slices to encode: every ``slice_step``-th slice **and the last**;
2. show each slice in radiological orientation (rows anterior -> posterior, columns
   from the patient's right to the patient's left, so the patient's right is on the
   image's left) with square pixels: the in-plane field of view is scaled to the input
   size by its longer physical side (anisotropic spacing is resampled away) and the
   shorter side is zero-padded (the ``paper`` profile stretches the slice to the square
   input instead, as the released code does);
3. encode in batches of bounded token count, keeping float32 tokens of the encoded
   slices only;
4. fit one PCA jointly on the tokens of both volumes (inside the image, optionally inside
   a mask; centred and exact by default; the ``paper`` profile's is the released one,
   :func:`breastlib.encoders._pca.fit_released_pca`) and project: the projection is
   affine, so interpolating between slices after it is exact and the full-size tokens of
   gap slices never exist;
5. resample each encoded slice's components to the voxel grid (bilinear, token centres)
   and interpolate along Z between encoded slices (linearly; ``paper`` blends the last
   block as the released code does, :func:`breastlib.features.layout.slice_weights`).

Results are cached on disk, keyed by image content, encoder, weights identity and every
parameter (``$BREASTLIB_CACHE``, else ``~/.cache/breastlib/features``).

Modules: :mod:`~breastlib.features.settings` (profile defaults, which slices),
:mod:`~breastlib.features.layout` (slice <-> encoder input <-> voxels),
:mod:`~breastlib.features.cache` (keys and files), :mod:`~breastlib.features.pair`
(:func:`feature_pair` itself).
"""

from __future__ import annotations

from breastlib.features.cache import CACHE_VERSION, default_cache_dir
from breastlib.features.pair import encode_volume, feature_pair
from breastlib.features.settings import (
    MAX_BATCH_TOKENS,
    FeatureSettings,
    encoded_slices,
    resolve_settings,
)

__all__ = [
    "CACHE_VERSION",
    "MAX_BATCH_TOKENS",
    "FeatureSettings",
    "default_cache_dir",
    "encode_volume",
    "encoded_slices",
    "feature_pair",
    "resolve_settings",
]
