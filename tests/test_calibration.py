"""The phantom-versus-real calibration measures (breastlib.phantom.calibration).

Each measure runs on a synthetic volume whose answer is known: Rayleigh noise of a given
sigma in air, two tissue classes of given share and ratio, a multiplicative ramp of given
magnitude, box breasts of given size, a power-law texture of given slope. The real exam
test reads the local mirror (``../shared/realdata``, see ``tests/realdata.py``) and is
skipped, with the reason, where it is absent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from realdata import REALDATA, needs_realdata

from breastlib.phantom import calibration as cal
from breastlib.volume import Volume


def volume(array: np.ndarray, spacing=(2.0, 2.0, 2.0)) -> Volume:
    return Volume.from_array(np.asarray(array, np.float32), np.diag([*spacing, 1.0]))


def rayleigh(shape, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of complex Gaussian noise of std ``sigma`` per component."""
    return np.hypot(rng.normal(0, sigma, shape), rng.normal(0, sigma, shape))


def power_law_field(shape: tuple[int, int], beta: float, rng: np.random.Generator,
                    spacing: float) -> np.ndarray:
    """A 2-D Gaussian random field with power spectrum ``~ f^-beta`` (f in cycles/mm)."""
    fx, fy = (np.fft.fftfreq(n, spacing) for n in shape)
    f = np.hypot(fx[:, None], fy[None, :])
    amplitude = np.where(f > 0, np.maximum(f, 1e-9) ** (-beta / 2), 0.0)
    noise = np.fft.fft2(rng.standard_normal(shape))
    return np.real(np.fft.ifft2(noise * amplitude))


# -- intensities -------------------------------------------------------------------------------
def test_reference_and_percentiles_of_a_uniform_ramp():
    image = np.arange(1000, dtype=float).reshape(10, 10, 10)
    body = np.ones(image.shape, bool)
    reference = cal.reference_intensity(image, body)
    assert reference == pytest.approx(np.percentile(np.arange(1000), 99))
    breast = np.zeros(image.shape, bool)
    breast[:5] = True  # values 0-499
    got = cal.breast_percentiles(image, breast, 500.0, q=(50.0,))
    assert got == {"breast p50": pytest.approx(249.5 / 500.0)}


def test_otsu_threshold_lies_between_two_modes():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(100, 5, 4000), rng.normal(300, 5, 1000)])
    assert cal.otsu_threshold(values) == pytest.approx(200.0, abs=10.0)


@pytest.mark.parametrize(("fraction", "ratio"), [(0.3, 3.0), (0.6, 1.8)])
def test_two_class_split_finds_the_share_and_the_contrast(fraction, ratio):
    rng = np.random.default_rng(1)
    shape = (40, 40, 20)
    bright = rng.random(shape) < fraction
    image = np.where(bright, 100.0 * ratio, 100.0) + rng.normal(0, 4, shape)
    split = cal.two_class_split(image, np.ones(shape, bool))
    assert split.bright_fraction == pytest.approx(bright.mean(), abs=0.005)
    assert split.contrast == pytest.approx(ratio, rel=0.02)
    assert split.dark_median == pytest.approx(100.0, rel=0.02)
    assert split.dark_p90 == pytest.approx(100.0 + 1.2816 * 4, rel=0.02)


def test_breast_histogram_is_a_density_over_the_reference():
    image = np.full((10, 10, 10), 50.0)
    centres, density = cal.breast_histogram(image, np.ones(image.shape, bool), 100.0)
    assert centres[np.argmax(density)] == pytest.approx(0.5, abs=0.02)
    assert np.sum(density * np.diff(cal.HISTOGRAM_EDGES)) == pytest.approx(1.0)


def test_breast_interior_drops_the_outer_skin_depth():
    body = np.zeros((30, 30, 30), bool)
    body[5:25, 5:25, 5:25] = True
    interior = cal.breast_interior(body, body, (1.0, 1.0, 1.0), skin_mm=3.0)
    assert interior.sum() == 14 ** 3  # 3 voxels off each face (depth > 3 mm)


# -- noise ------------------------------------------------------------------------------------
def noisy_phantom(sigma: float, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A bright box body in Rayleigh air of ``sigma``, with blanked (zero) corners."""
    rng = np.random.default_rng(seed)
    shape = (60, 60, 30)
    body = np.zeros(shape, bool)
    body[20:40, 20:40, 8:22] = True
    clean = np.where(body, 500.0, 0.0)
    image = np.hypot(clean + rng.normal(0, sigma, shape), rng.normal(0, sigma, shape))
    image[:4, :4] = 0.0
    return image, body


@pytest.mark.parametrize("sigma", [3.0, 12.0])
def test_noise_sigma_recovers_rayleigh_sigma_in_air(sigma):
    image, body = noisy_phantom(sigma)
    air = cal.air_mask(image, body, (2.0, 2.0, 2.0))
    noise = cal.noise_sigma(image, air)
    assert noise.from_median == pytest.approx(sigma, rel=0.03)
    assert noise.from_mad == pytest.approx(sigma, rel=0.05)
    assert noise.voxels == air.sum()


def test_air_mask_keeps_away_from_body_edge_and_blanked_voxels():
    image, body = noisy_phantom(5.0)
    air = cal.air_mask(image, body, (2.0, 2.0, 2.0), margin_mm=10.0, edge_mm=6.0)
    from scipy import ndimage as ndi

    distance = ndi.distance_transform_edt(~body, sampling=(2.0, 2.0, 2.0))
    assert not air[distance < 10.0].any()
    assert not air[:3].any() and not air[:, :, -3:].any()  # within 6 mm of the edge
    assert air.any() and (image[air] > 0).all()


def test_smoothing_keeps_the_median_estimate_and_shrinks_the_spread():
    from scipy import ndimage as ndi

    rng = np.random.default_rng(3)
    image = ndi.gaussian_filter(rayleigh((60, 60, 30), 10.0, rng), 1.0)
    noise = cal.noise_sigma(image, np.ones(image.shape, bool))
    assert noise.from_median == pytest.approx(10.0 * np.sqrt(np.pi / 2) / cal.RAYLEIGH_MEDIAN,
                                              rel=0.03)
    assert noise.from_mad < 0.5 * noise.from_median


def test_difference_noise_of_white_gaussian_noise():
    rng = np.random.default_rng(4)
    image = 200.0 + rng.normal(0, 7.0, (50, 50, 20))
    assert cal.difference_noise(image, np.ones(image.shape, bool)) == pytest.approx(7.0,
                                                                                     rel=0.03)
    assert np.isnan(cal.difference_noise(image, np.zeros(image.shape, bool)))


def test_noise_is_nan_without_air():
    assert np.isnan(cal.noise_sigma(np.ones((4, 4, 4)), np.zeros((4, 4, 4), bool)).from_median)


# -- shading ----------------------------------------------------------------------------------
def ramp_box(amplitude: float) -> tuple[np.ndarray, np.ndarray]:
    """A 300 mm (x) box of 1s times a ramp from ``1 - a`` to ``1 + a`` along x."""
    shape = (150, 30, 30)  # 2 mm voxels
    x = (np.arange(shape[0]) + 0.5) / shape[0]
    gain = 1.0 + amplitude * (2.0 * x - 1.0)
    return np.broadcast_to(gain[:, None, None], shape).copy(), np.ones(shape, bool)


def test_shading_of_a_flat_class_is_one():
    image, region = ramp_box(0.0)
    assert cal.shading(100.0 * image, region, (2.0, 2.0, 2.0)) == pytest.approx(1.0)


@pytest.mark.parametrize("amplitude", [0.1, 0.3])
def test_shading_measures_a_multiplicative_ramp(amplitude):
    image, region = ramp_box(amplitude)
    expected = (1 + 0.8 * amplitude) / (1 - 0.8 * amplitude)  # the ramp's p90 / p10
    got = cal.shading(100.0 * image, region, (2.0, 2.0, 2.0))
    assert got == pytest.approx(expected, rel=0.03)


def test_shading_of_a_sparse_class_ignores_the_other_class():
    rng = np.random.default_rng(5)
    image, region = ramp_box(0.2)
    sparse = rng.random(region.shape) < 0.3
    mixed = np.where(sparse, 100.0, 30.0) * image  # a dark class in between
    full = cal.shading(100.0 * image, region, (2.0, 2.0, 2.0))
    assert cal.shading(mixed, sparse, (2.0, 2.0, 2.0)) == pytest.approx(full, rel=0.02)


# -- size and shape ---------------------------------------------------------------------------
def two_box_breasts() -> tuple[np.ndarray, np.ndarray]:
    """Body 100 voxels wide; breasts 20 x 30 x 10 and 16 x 30 x 10 voxels in front of it."""
    body = np.zeros((120, 80, 40), bool)
    body[10:110, :40, 5:35] = True
    breast = np.zeros_like(body)
    breast[20:40, 40:70, 10:20] = True  # right (low x): 20 wide, 30 deep, 10 high
    breast[75:91, 40:70, 12:22] = True  # left: 16 wide
    return breast, body | breast


def test_split_breasts_at_the_body_mid_line():
    breast, body = two_box_breasts()
    right, left = cal.split_breasts(breast, body)
    assert right.sum() == 20 * 30 * 10 and left.sum() == 16 * 30 * 10
    assert not (right & left).any()


def test_breast_geometry_of_two_boxes():
    breast, body = two_box_breasts()
    got = cal.breast_geometry(breast, body, (1.0, 2.0, 3.0))
    assert got["volume (ml)"] == pytest.approx((20 + 16) / 2 * 30 * 10 * 6.0 / 1000.0)
    assert got["depth (mm)"] == pytest.approx(30 * 2.0)
    assert got["width (mm)"] == pytest.approx(18 * 1.0)
    assert got["height (mm)"] == pytest.approx(10 * 3.0)


def test_breast_extent_of_an_empty_mask_is_nan():
    assert all(np.isnan(v) for v in cal.breast_extent(np.zeros((3, 3, 3), bool),
                                                      (1, 1, 1)).values())


# -- texture ----------------------------------------------------------------------------------
def textured_slab(beta: float, spacing: float = 2.0, seed: int = 6
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Axial slices of independent power-law fields, a disk of radius 90 mm as breast."""
    rng = np.random.default_rng(seed)
    n = 128
    image = np.stack([power_law_field((n, n), beta, rng, spacing) for _ in range(4)], axis=2)
    x = (np.arange(n) - n / 2) * spacing
    disk = np.hypot(x[:, None], x[None, :]) < 90.0
    return 100.0 + image / image.std(), np.repeat(disk[:, :, None], 4, axis=2)


@pytest.mark.parametrize("beta", [0.0, 2.0, 3.0])
def test_spectral_slope_of_a_power_law_texture(beta):
    image, breast = textured_slab(beta)
    frequency, power = cal.radial_power_spectrum(image, breast, (2.0, 2.0, 2.0))
    assert cal.spectral_slope(frequency, power) == pytest.approx(-beta, abs=0.25)


def test_power_spectrum_of_white_noise_has_its_variance_level():
    rng = np.random.default_rng(7)
    image = rng.normal(0, 3.0, (96, 96, 3))
    _, power = cal.radial_power_spectrum(image, np.ones(image.shape, bool), (2.0, 2.0, 2.0))
    # a white field of variance v on pixels of area a has a flat density v * a
    assert np.nanmedian(power) == pytest.approx(9.0 * 4.0, rel=0.1)


def test_power_spectrum_bins_above_nyquist_are_nan():
    image, breast = textured_slab(2.0, spacing=4.0)  # Nyquist 0.125 cycles/mm
    frequency, power = cal.radial_power_spectrum(image, breast, (4.0, 4.0, 4.0))
    assert np.isnan(power[frequency > 0.13]).all() and np.isfinite(power[frequency < 0.1]).all()


def test_power_spectrum_without_a_usable_slice_is_nan():
    image = np.ones((20, 20, 3))
    breast = np.zeros(image.shape, bool)
    breast[:3, :3] = True  # under MIN_SLICE_PIXELS per slice
    _, power = cal.radial_power_spectrum(image, breast, (1.0, 1.0, 1.0))
    assert np.isnan(power).all()
    assert np.isnan(cal.spectral_slope(*cal.radial_power_spectrum(image, breast, (1, 1, 1))))


def test_tapered_window_rises_from_the_edge():
    mask = np.zeros((40, 40), bool)
    mask[5:35, 5:35] = True
    window = cal.tapered_window(mask, (1.0, 1.0), taper_mm=6.0)
    assert window[~mask].max() == 0.0 and window[20, 20] == pytest.approx(1.0)
    assert 0.0 < window[5, 20] < window[8, 20] < 1.0


# -- table and figure -------------------------------------------------------------------------
def box_exam(seed: int = 8) -> tuple[Volume, np.ndarray, np.ndarray]:
    """Two textured box breasts (FGT 30 % at 3 x fat) on a body, in Rayleigh air."""
    rng = np.random.default_rng(seed)
    breast, body = two_box_breasts()
    clean = np.where(body, 300.0, 0.0)
    fgt = breast & (rng.random(body.shape) < 0.3)
    clean[breast] = 100.0
    clean[fgt] = 300.0
    image = np.hypot(clean + rng.normal(0, 5, body.shape), rng.normal(0, 5, body.shape))
    return volume(image), body, breast


def test_calibration_table_has_one_column_per_image_and_known_values():
    exam = box_exam()
    table = cal.calibration_table({"a": exam, "b": box_exam(9)})
    assert list(table.columns) == ["a", "b"]
    a = table["a"]
    assert a["noise sigma / reference"] == pytest.approx(5.0 / 300.0, rel=0.1)
    assert a["breast volume (ml)"] == pytest.approx(18 * 30 * 10 * 8.0 / 1000.0)
    assert a["class contrast (bright / dark median)"] == pytest.approx(3.0, rel=0.05)
    assert np.isfinite(table.to_numpy()).all(), table[~np.isfinite(table["a"])]


def test_calibration_figure_draws_slices_histograms_and_spectra():
    from breastlib.booktools.calibration import calibration_figure

    exam = box_exam()
    figure = calibration_figure({"a": exam, "b": exam, "c": exam}, [["a", "b"], ["c"]])
    assert isinstance(figure, Figure)
    histogram = figure.axes[2]
    assert histogram.get_xlabel() == "breast intensity / body p99"
    assert len(histogram.get_lines()) == 2
    assert "cycles/mm" in figure.axes[3].get_xlabel()


# -- the real exam ----------------------------------------------------------------------------
@needs_realdata
def test_calibration_table_on_the_real_exam_is_finite():
    from breastlib.booktools.real_exam import load_exam

    exam = load_exam(REALDATA / "uta11", spacing_mm=6.0)
    table = cal.calibration_table({"real DCE pre": (exam.pre, exam.body, exam.breast)})
    assert np.isfinite(table.to_numpy()).all(), table[~np.isfinite(table.iloc[:, 0])]
    column = table["real DCE pre"]
    assert 0.0 < column["bright-class fraction"] < 1.0
    assert column["breast volume (ml)"] > 50.0


@needs_realdata
def test_the_cohort_chapter_says_what_the_calibration_measured():
    """book/cohort.md reads the calibration table in words; if the phantom or the measures
    change, these claims must be read again."""
    from pathlib import Path

    from breastlib.booktools.calibration import calibration_images, match_words
    from breastlib.booktools.real_exam import load_exam

    exam = load_exam(REALDATA / "uta11", spacing_mm=3.0)
    table = cal.calibration_table(calibration_images(exam))
    real = table["real DCE pre"]

    def ratio(measure: str, phantom: pd.Series, shift: float = 0.0) -> float:
        return (phantom[measure] - shift) / (real[measure] - shift)

    # The original phantom ("off"), which the strengths were set against.
    off = table["phantom t1fs (off)"]
    assert 1.6 < ratio("noise sigma / reference", off) < 2.5  # "about twice the exam's"
    assert 2.5 < off["class contrast (bright / dark median)"] < 2.9  # "about 2.7"
    assert 1.45 < real["class contrast (bright / dark median)"] < 1.7  # "against 1.6"
    assert ratio("shading dark class (p90/p10, 20 mm)", off, 1.0) < 0.5  # "less than half"
    assert 5.0 < ratio("texture power at 0.05 cycles/mm (mm^2)", off) < 6.0  # "five to six"
    # The clinical phantom, at the strengths set from this table.
    phantom = table["phantom t1fs (clinical)"]
    assert 1 / 1.3 < ratio("noise sigma / reference", phantom) < 1.3  # "within a factor 1.3"
    for measure, shift in (("shading dark class (p90/p10, 20 mm)", 1.0),
                           ("skin rim (outer 6 mm) median / reference", 0.0)):
        assert 1 / 1.2 < ratio(measure, phantom, shift) < 1.2, measure  # "matches"
    assert 2.15 < phantom["class contrast (bright / dark median)"] < 2.45  # "about 2.3"
    assert 2.0 < ratio("texture power at 0.05 cycles/mm (mm^2)", phantom) < 3.0  # "two and a half"
    assert phantom["spectral slope 0.02-0.15 cycles/mm"] < real[
        "spectral slope 0.02-0.15 cycles/mm"]  # "falls off more steeply"
    assert 1.8 < 1 / ratio("breast height (mm)", phantom) < 2.2  # "twice as tall"
    for measure in ("breast depth (mm)", "breast width (mm)", "breast p50"):
        assert 1 / 1.5 < ratio(measure, phantom) < 1.5, measure  # "about right"
    t2_real, t2_phantom = table["real T2"], table["phantom t2 (clinical)"]
    for measure in ("bright-class fraction", "class contrast (bright / dark median)"):
        assert 1 / 1.5 < t2_phantom[measure] / t2_real[measure] < 1.5, measure
    words = match_words(table)
    assert "real DCE pre against the phantom's t1fs" in words and "image units" not in words
    text = (Path(__file__).resolve().parents[1] / "book" / "cohort.md").read_text()
    for words in ("five to six times", "about twice the exam's", "within a factor 1.3",
                  "about 2.3 against 1.6", "two and a half times", "less than half"):
        assert words in " ".join(text.split()), words
