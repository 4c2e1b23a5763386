"""The body mask (:func:`breastlib.register.initial.foreground_mask`): MR ghosts that touch
the body are cut on voxels fine enough to resolve them, and coarse grids get the plain
threshold, largest region and hole filling they always had."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.measure import label
from synthetic_volumes import centred_affine

from breastlib.intensity import normalise_intensity
from breastlib.phantom.grids import VOXEL_MM
from breastlib.register.initial import foreground_mask, ghost_opening_radii
from breastlib.volume import Volume


def _plain_mask(array: np.ndarray, threshold: float = 0.05) -> np.ndarray:
    """Threshold, largest face-connected region, holes filled: the mask without the
    opening, written with scikit-image's labelling as an independent oracle."""
    above = ndi.gaussian_filter(normalise_intensity(array), 1.0) > threshold
    labels = label(above, connectivity=1)
    if labels.max() > 1:
        above = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
    return ndi.binary_fill_holes(above)


def _body_with_ghost_lace(spacing_mm: float) -> tuple[Volume, np.ndarray, np.ndarray]:
    """An ellipsoidal body of intensity 1 on isotropic voxels, with a lace of faint
    strands (2 voxels wide, 5 mm apart, intensity 0.5) hanging below it in the air, as MR
    ghosts of the breasts lie; returns the volume, the body and the lace."""
    shape = tuple(round(n / spacing_mm) for n in (120.0, 120.0, 60.0))
    grid = np.stack(np.meshgrid(*(np.arange(n) * spacing_mm for n in shape),
                                indexing="ij"))
    centre = np.array([60.0, 40.0, 30.0])[:, None, None, None]
    radii = np.array([45.0, 25.0, 22.0])[:, None, None, None]
    body = (((grid - centre) / radii) ** 2).sum(axis=0) <= 1.0
    pitch, width = 5.0, 2 * spacing_mm
    x, y, z = grid
    strands = ((x % pitch < width) | (z % pitch < width)) & ((y % pitch < width) | (
        x % pitch < width) & (z % pitch < width))
    lace = strands & (y > 55.0) & (np.abs(x - 60.0) < 30.0) & (np.abs(z - 30.0) < 18.0)
    # a column of strands joins the lace to the bottom of the body
    lace |= (x % pitch < width) & (z % pitch < width) & (y > 40.0) & (y <= 55.0) & (
        np.abs(x - 60.0) < 30.0) & (np.abs(z - 30.0) < 18.0) & ~body
    lace &= ~body
    array = np.where(body, 1.0, np.where(lace, 0.5, 0.0)).astype(np.float32)
    array += np.random.default_rng(0).normal(0.0, 0.01, shape).astype(np.float32)
    affine = centred_affine(shape, spacing=(spacing_mm,) * 3)
    return Volume.from_array(array, affine), body, lace


def test_ghost_strands_touching_the_body_are_cut_on_fine_voxels():
    volume, body, lace = _body_with_ghost_lace(0.8)
    assert ghost_opening_radii(volume.spacing) == (5, 5, 5)
    plain = _plain_mask(volume.array)
    assert plain[lace].mean() > 0.9  # a threshold alone takes the lace as body
    mask = foreground_mask(volume)
    # the opening's box (half-width 4 mm, corners 7 mm away) is grown back inside the
    # thresholded region, so strands that close to the body stay; beyond, none may
    beyond = lace & (ndi.distance_transform_edt(~body, sampling=volume.spacing) > 10.0)
    assert beyond.sum() > 0.5 * lace.sum()
    assert mask[beyond].mean() < 0.01, f"{mask[beyond].mean():.1%} of the ghost lace kept"
    assert mask[body].mean() > 0.995, f"{1 - mask[body].mean():.2%} of the body lost"


def test_coarse_voxels_get_the_plain_mask_to_the_voxel():
    for spacing in (2.2, 3.0):
        volume, _, _ = _body_with_ghost_lace(spacing)
        assert ghost_opening_radii(volume.spacing) == (0, 0, 0)
        assert np.array_equal(foreground_mask(volume), _plain_mask(volume.array))


def test_the_opening_stays_off_on_the_small_phantom_and_the_exam_grid():
    """The book's committed rows (small phantom voxels) and the real-exam numbers (3 mm
    grid) were computed without the opening: it must not change them."""
    small = VOXEL_MM["small"]
    # a grid's voxels are its field of view over a whole number of voxels: a little under
    # the nominal size at most
    for inplane, thick in itertools.product(small["inplane"], small["slice"]):
        assert ghost_opening_radii((inplane * 0.98, inplane * 0.98, thick * 0.98)) == (
            0, 0, 0)
    assert ghost_opening_radii((3.0, 3.0, 3.0)) == (0, 0, 0)
    # full-size voxels are opened along every axis, anisotropic ones where they resolve it
    assert ghost_opening_radii((0.76, 0.76, 1.11)) == (5, 5, 3)
    assert ghost_opening_radii((1.5, 1.5, 3.0)) == (2, 2, 0)


@pytest.mark.parametrize("spacing", [0.8, 2.5])
def test_an_empty_image_has_an_empty_mask(spacing):
    volume = Volume.from_array(np.zeros((40, 40, 20), np.float32),
                               centred_affine((40, 40, 20), spacing=(spacing,) * 3))
    assert not foreground_mask(volume).any()


def test_the_opening_can_be_switched_off_and_must_be_a_length():
    volume, _, _ = _body_with_ghost_lace(0.8)
    assert np.array_equal(foreground_mask(volume, ghost_opening_mm=0.0),
                          _plain_mask(volume.array))
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="ghost_opening_mm"):
            foreground_mask(volume, ghost_opening_mm=bad)
