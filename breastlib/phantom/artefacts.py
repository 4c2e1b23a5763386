"""MRI image artefacts of clinical breast exams: ghosts, motion, imperfect fat suppression.

Pure functions of an image (canonical ``(X, Y, Z)`` magnitude, float) or a grid; each is
the identity, bit for bit, at strength 0, so the phantom with every
:class:`~breastlib.phantom.realism.Realism` effect off is unchanged.

* :func:`ghosting`: phase-encode ghosts (a periodic modulation of the k-space lines, the
  N/2 "Nyquist" ghost first): faint copies of the body shifted along A-P.
* :func:`motion_artefact`: some k-space lines acquired with the body displaced along the
  phase-encoding direction (breathing moves the prone chest wall mostly A-P): blur and
  ringing along that axis only.
* :func:`fat_sat_quality_map`: spatially varying fat-suppression quality from B0
  inhomogeneity, for ``synthesize(..., fat_sat_quality=...)``.

The phase-encoding axis of a bilateral axial breast scan is A-P (canonical axis 1), so
that cardiac and breathing artefacts do not run across the breasts' left-right extent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft

from breastlib.grid import Grid
from breastlib.phantom.acquisition import grid_points
from breastlib.phantom.contrast import FAT_SAT_RESIDUAL, fat_sat_quality_for_residual
from breastlib.phantom.noise import NoiseLattice

#: Amplitude of the higher ghost orders relative to the N/2 ghost.
GHOST_HIGHER_ORDER = 0.5
#: Fraction of the phase-encoding lines corrupted at motion strength 1.
MOTION_MAX_LINE_FRACTION = 0.5
#: Range (mm) of the displacement of a corrupted line (a few mm of breathing).
MOTION_SHIFT_MM = (1.0, 4.0)
#: Axillae (RAS mm, right then left): lateral, slightly posterior and superior of the
#: breasts, where the body surface curves away from the coil and B0 is worst.
AXILLA_CENTRES_MM = np.array([[130.0, -60.0, 40.0], [-130.0, -60.0, 40.0]])
#: Radius (mm) of the axillary off-resonance bumps.
AXILLA_RADIUS_MM = 45.0
#: Smooth random part of the B0 map: lattice cell (mm) and relative amplitude.
B0_CELL_MM = 60.0
B0_RANDOM = 0.25


def _as_float32(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float32)


def _ghost_shifts(n: int, copies: int) -> list[tuple[int, float]]:
    """``(shift in voxels, relative amplitude)`` of each ghost along an axis of ``n``.

    A modulation of the k-space lines with period ``2 * copies`` lines puts ghosts at
    multiples of ``n / (2 * copies)``; the N/2 ghost has relative amplitude 1.
    """
    period = 2 * copies
    ghosts = []
    for j in range(1, period):
        shift = round(j * n / period) % n
        if shift == 0:
            continue
        weight = 1.0 if 2 * j == period else GHOST_HIGHER_ORDER
        ghosts.append((shift, weight))
    return ghosts


def ghosting(image: np.ndarray, amplitude: float, rng: np.random.Generator, *,
             axis: int = 1, copies: int = 2) -> np.ndarray:
    """Add phase-encode ghosts: faint copies shifted along ``axis``, wrapping around.

    The ghosts of a periodic line-to-line modulation of k-space (period ``2 * copies``
    lines) are added to the complex image with random phases, then the magnitude is
    taken, so a ghost over the body brightens or darkens it as on a scanner.

    Parameters
    ----------
    image
        ``(X, Y, Z)`` magnitude image (any float units).
    amplitude
        Amplitude of the half-field-of-view (N/2) ghost as a fraction of the image
        (0 = no ghost); the other orders have :data:`GHOST_HIGHER_ORDER` of it.
    rng
        Source of the ghosts' phases.
    axis
        Phase-encoding axis (1 = A-P in canonical order).
    copies
        ``1``: the N/2 ghost alone; ``k``: ghosts at every multiple of ``N / (2 k)``.

    Returns
    -------
    numpy.ndarray
        ``(X, Y, Z)`` float32 magnitude, or ``image`` itself when ``amplitude == 0``.
    """
    if amplitude == 0:
        return image
    if copies < 1:
        raise ValueError(f"copies must be >= 1, not {copies}")
    img = _as_float32(image)
    real = img.copy()
    imag = np.zeros_like(img)
    for shift, weight in _ghost_shifts(img.shape[axis], copies):
        phase = rng.uniform(0.0, 2.0 * np.pi)
        ghost = np.roll(img, shift, axis=axis) * np.float32(amplitude * weight)
        real += ghost * np.float32(np.cos(phase))
        imag += ghost * np.float32(np.sin(phase))
    return np.sqrt(real * real + imag * imag).astype(np.float32)


def _motion_ramps(n: int, strength: float, rng: np.random.Generator,
                  voxel_mm: float) -> np.ndarray:
    """``(n,)`` complex64 per-line factors: 1, or the phase ramp of a shifted body."""
    factors = np.ones(n, dtype=np.complex64)
    n_bad = round(min(strength, 1.0) * MOTION_MAX_LINE_FRACTION * n)
    if n_bad == 0:
        return factors
    lines = rng.choice(n, n_bad, replace=False)
    shift_mm = rng.uniform(*MOTION_SHIFT_MM, n_bad) * rng.choice([-1.0, 1.0], n_bad)
    k = sfft.fftfreq(n)[lines]  # cycles per voxel
    factors[lines] = np.exp(-2j * np.pi * k * shift_mm / voxel_mm).astype(np.complex64)
    return factors


def motion_artefact(image: np.ndarray, strength: float, rng: np.random.Generator, *,
                    axis: int = 1, spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """Blur and ringing from motion between phase-encoding lines.

    A fraction ``strength * MOTION_MAX_LINE_FRACTION`` of the k-space lines along
    ``axis`` is acquired with the body displaced along ``axis`` by
    :data:`MOTION_SHIFT_MM` (random magnitude and sign per line): their phase ramps make
    the image inconsistent along that axis only.

    Parameters
    ----------
    image
        ``(X, Y, Z)`` magnitude image.
    strength
        0 (none) to 1 (half the lines corrupted); larger values are clipped to 1.
    rng
        Source of the corrupted lines and shifts.
    axis
        Phase-encoding axis (1 = A-P in canonical order).
    spacing
        ``(3,)`` voxel size in mm (e.g. ``grid.spacing``), to turn mm shifts into
        voxels along ``axis``.

    Returns
    -------
    numpy.ndarray
        ``(X, Y, Z)`` float32 magnitude, or ``image`` itself when ``strength == 0``.
    """
    if strength == 0:
        return image
    img = _as_float32(image)
    factors = _motion_ramps(img.shape[axis], strength, rng, float(spacing[axis]))
    shape = [1] * img.ndim
    shape[axis] = -1
    kspace = sfft.fft(img, axis=axis) * factors.reshape(shape)
    return np.abs(sfft.ifft(kspace, axis=axis)).astype(np.float32)


@dataclass(frozen=True, eq=False)
class FatSatField:
    """Fat-suppression quality of one acquisition, evaluable at any image-space point.

    Parameters
    ----------
    centre
        ``(3,)`` RAS mm magnet isocentre (the field of view's centre).
    radius
        In-plane half field of view (mm): normalises the off-centre distance.
    axilla_gain
        ``(2,)`` strength of the right and left axillary bumps.
    lattice
        Smooth random part of the off-resonance.
    scale
        Off-resonance that maps to the worst suppression (the field's maximum on its grid).
    residue
        Fraction of deep fat's T1 signal left where suppression is worst.
    """

    centre: np.ndarray
    radius: float
    axilla_gain: np.ndarray
    lattice: NoiseLattice
    scale: float
    residue: float

    def off_resonance(self, points: np.ndarray) -> np.ndarray:
        """Relative B0 offset magnitude (>= 0, unnormalised) at ``(N, 3)`` mm points."""
        p = np.asarray(points, dtype=np.float32)
        radial = np.sum((p - self.centre) ** 2, axis=1) / np.float32(self.radius ** 2)
        axilla = np.zeros(len(p), dtype=np.float32)
        for gain, c in zip(self.axilla_gain, AXILLA_CENTRES_MM, strict=True):
            d2 = np.sum((p - c.astype(np.float32)) ** 2, axis=1) / AXILLA_RADIUS_MM ** 2
            axilla += np.float32(gain) * np.exp(-d2)
        random = B0_RANDOM * self.lattice.sample(p)[0]
        return np.maximum(radial + axilla + random, 0.0).astype(np.float32)

    def quality(self, points: np.ndarray) -> np.ndarray:
        """``(N,)`` float32 quality in ``(0, 1]`` at ``(N, 3)`` RAS mm image-space points.

        Deep fat keeps ``FAT_SAT_RESIDUAL + w * (residue - FAT_SAT_RESIDUAL)`` of its
        signal, ``w = (offset / scale) ** 2`` clipped to ``[0, 1]``: suppression fails
        faster than linearly once the fat peak leaves the pulse's bandwidth.
        """
        w = np.clip(self.off_resonance(points) / np.float32(self.scale), 0.0, 1.0) ** 2
        extra = max(self.residue - FAT_SAT_RESIDUAL, 0.0)
        fraction = np.float32(FAT_SAT_RESIDUAL) + w.astype(np.float32) * np.float32(extra)
        return np.asarray(fat_sat_quality_for_residual(fraction), dtype=np.float32)


def draw_fat_sat_field(grid: Grid, rng: np.random.Generator, residue: float) -> FatSatField:
    """Draw the fat-suppression field of one acquisition on ``grid``.

    Parameters
    ----------
    grid
        The image's grid: its centre is the isocentre, its extent sets "off-centre".
    rng
        Source of the axillary asymmetry and the smooth random B0 part.
    residue
        Fraction (0-1) of deep fat's T1 signal left where suppression is worst.
    """
    lo, hi = grid.world_bounds()
    lattice = NoiseLattice.random(rng, lo - B0_CELL_MM, hi + B0_CELL_MM, B0_CELL_MM)
    centre = (0.5 * (lo + hi)).astype(np.float32)
    radius = float(0.5 * min(hi[0] - lo[0], hi[1] - lo[1]))
    field = FatSatField(centre=centre, radius=radius,
                        axilla_gain=rng.uniform(0.8, 1.5, 2).astype(np.float32),
                        lattice=lattice, scale=1.0, residue=float(residue))
    # "Worst" is taken inside the in-plane circle of the field of view, where the body
    # lies; the empty corners beyond it saturate at the worst quality.
    pts = grid_points(grid)
    in_disc = np.sum((pts[:, :2] - centre[:2]) ** 2, axis=1) <= radius ** 2
    worst = float(field.off_resonance(pts[in_disc]).max())
    return FatSatField(centre=field.centre, radius=radius,
                       axilla_gain=field.axilla_gain, lattice=lattice,
                       scale=max(worst, 1e-6), residue=float(residue))


def fat_sat_quality_map(grid: Grid, rng: np.random.Generator, residue: float) -> np.ndarray:
    """Spatially varying fat-suppression quality on ``grid`` (1 = nominal suppression).

    Worst off-centre, towards the edges of the field of view and at the axillae (B0
    inhomogeneity), smooth (correlation lengths of tens of mm).

    Parameters
    ----------
    grid
        Image grid (canonical ``(X, Y, Z)``).
    rng
        Source of the field (not used when ``residue <= FAT_SAT_RESIDUAL``).
    residue
        Fraction (0-1) of deep fat's T1 signal left where suppression is worst; at or
        below the nominal :data:`~breastlib.phantom.contrast.FAT_SAT_RESIDUAL` (0.06),
        e.g. 0, the map is all ones.

    Returns
    -------
    numpy.ndarray
        ``(X, Y, Z)`` float32 in ``(0, 1]``, for ``synthesize(fat_sat_quality=...)`` at
        the grid's voxel centres; the minimum is
        ``FAT_SAT_RESIDUAL / residue``.
    """
    if residue <= FAT_SAT_RESIDUAL:
        return np.ones(grid.shape, dtype=np.float32)
    field = draw_fat_sat_field(grid, rng, residue)
    return field.quality(grid_points(grid)).reshape(grid.shape)
