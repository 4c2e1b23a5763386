"""Tissue intensities of each contrast, from relaxation physics.

Sources and targets: book/conventions.md, "Phantom physics".

MRI values are relative signals scaled so that fat on T1 non-fat-suppressed is 1000
(arbitrary units, as a scanner would store them); CT values are Hounsfield units.

Physics behind the table (spoiled gradient echo, equal proton density):
fat T1 296/423 ms (1.5/3 T), FGT T1 1266/1680 ms give fat:FGT of about 3 on T1
non-fat-sat; T2 154 vs 71 ms give about 2.2 on T2-weighted. Fat suppression leaves fat
at 0.1-0.3 of FGT, worse near the skin/air boundary. Early post-contrast (r1 about
4.5 /s/mM): FGT-like tissue gains about 40 % (mild background parenchymal enhancement),
cancers enhance earlier and more, with a brighter rim; vessels and the heart's blood pool
are brightest. CT: fat -100, FGT +40, muscle +50, skin +50, lung -850, bone hundreds.
"""

from __future__ import annotations

import numpy as np

from breastlib.phantom.labels import LABELS, N_LABELS

#: Contrast names and what they are.
CONTRASTS: dict[str, str] = {
    "t1": "T1-weighted gradient echo, no fat suppression",
    "t1fs": "T1-weighted fat-suppressed, pre-contrast",
    "post": "T1-weighted fat-suppressed, early post-contrast (about 90 s)",
    "sub": "subtraction: early post-contrast minus pre-contrast (fat-suppressed)",
    "t2": "T2-weighted turbo spin echo, no fat suppression",
    "ct": "CT, Hounsfield units",
}

MRI_SCALE = 1000.0

# Relative tissue signal per contrast (fat on T1 = 1). Columns: t1, t1fs, t2, ct (HU).
_TABLE: dict[str, tuple[float, float, float, float]] = {
    "background": (0.0, 0.0, 0.0, -1000.0),
    "fat": (1.0, 0.10, 1.0, -100.0),
    "fgt": (0.33, 0.42, 0.45, 40.0),
    "skin": (0.55, 0.50, 0.55, 50.0),
    "nipple": (0.42, 0.48, 0.50, 45.0),
    "ligament": (0.30, 0.32, 0.35, 40.0),
    "vessel": (0.45, 0.45, 0.12, 40.0),
    "lesion": (0.31, 0.44, 0.55, 45.0),
    "pectoralis": (0.30, 0.36, 0.22, 50.0),
    "chest_wall": (0.30, 0.36, 0.24, 50.0),
    "rib": (0.70, 0.14, 0.55, 300.0),
    "sternum": (0.70, 0.14, 0.55, 300.0),
    "lung": (0.02, 0.02, 0.02, -850.0),
    "heart": (0.32, 0.38, 0.22, 45.0),
    "liver": (0.30, 0.35, 0.18, 60.0),
    "mediastinum": (0.92, 0.10, 0.95, -95.0),
    "spine": (0.70, 0.14, 0.55, 300.0),
}

# Relative enhancement on early post-contrast (signal multiplies by 1 + value).
_ENHANCEMENT: dict[str, float] = {
    "fgt": 0.41, "skin": 0.25, "nipple": 0.8, "ligament": 0.15, "vessel": 2.8,
    "lesion": 1.1, "pectoralis": 0.3, "chest_wall": 0.3, "heart": 0.6, "liver": 0.5,
    "rib": 0.1, "sternum": 0.1, "spine": 0.1,
}


#: Fraction of its T1 signal that deep fat keeps under nominal fat suppression.
FAT_SAT_RESIDUAL = 0.06


def _lookup(column: int) -> np.ndarray:
    table = np.zeros(N_LABELS, dtype=np.float32)
    for name, values in _TABLE.items():
        table[LABELS[name]] = values[column]
    return table


def tissue_table(contrast: str) -> dict[str, float]:
    """Mean tissue value per label name for ``contrast`` (before texture and effects)."""
    if contrast not in CONTRASTS or contrast == "sub":
        raise ValueError(f"contrast must be one of t1, t1fs, post, t2, ct, not {contrast!r}")
    if contrast == "post":
        base = _lookup(1)
        return {name: float(base[v] * (1.0 + _ENHANCEMENT.get(name, 0.0)) * MRI_SCALE)
                for name, v in LABELS.items()}
    column = {"t1": 0, "t1fs": 1, "t2": 2, "ct": 3}[contrast]
    scale = 1.0 if contrast == "ct" else MRI_SCALE
    return {name: float(_lookup(column)[v] * scale) for name, v in LABELS.items()}


def fat_sat_quality_for_residual(residual: float | np.ndarray) -> float | np.ndarray:
    """The ``fat_sat_quality`` at which deep fat keeps ``residual`` of its T1 signal.

    Parameters
    ----------
    residual
        Fraction (0-1) of deep fat's non-suppressed signal left, scalar or array.

    Returns
    -------
    float or numpy.ndarray
        Quality in ``(0, 1]`` (same shape as ``residual``; float32 for arrays): 1 where
        ``residual`` is at or below the nominal :data:`FAT_SAT_RESIDUAL`.
    """
    if np.ndim(residual) == 0:
        return min(1.0, FAT_SAT_RESIDUAL / max(float(residual), FAT_SAT_RESIDUAL))
    fraction = np.maximum(np.asarray(residual, dtype=np.float32), np.float32(FAT_SAT_RESIDUAL))
    return (np.float32(FAT_SAT_RESIDUAL) / fraction).astype(np.float32)


def _suppression(fat_sat_quality: float | np.ndarray) -> float | np.ndarray:
    """Divisor of the fat residual: a scalar stays a Python scalar (float32 arithmetic)."""
    if np.ndim(fat_sat_quality) == 0:
        return max(fat_sat_quality, 1e-3)
    return np.maximum(np.asarray(fat_sat_quality, dtype=np.float32), np.float32(1e-3))


def synthesize(contrast: str, labels: np.ndarray, aux: dict[str, np.ndarray], *,
               bpe: float = 1.0, fat_sat_quality: float | np.ndarray = 1.0) -> np.ndarray:
    """Noise-free tissue intensities at points with ``labels`` and texture fields ``aux``.

    Parameters
    ----------
    contrast
        ``"t1"``, ``"t1fs"``, ``"post"``, ``"t2"`` or ``"ct"`` (subtraction is formed after
        acquisition as ``post - t1fs``).
    labels
        ``(N,)`` integer labels from :meth:`~breastlib.phantom.anatomy.Anatomy.render`.
    aux
        The render's ``(N,)`` texture fields (``tex``, ``rim``, ``marrow``, ``blood``,
        ``ligament``, ``depth``).
    bpe
        Scales the background parenchymal enhancement of FGT on ``"post"`` (1 = +41 %).
    fat_sat_quality
        1 = nominal suppression; smaller values leave more fat signal. A scalar acts
        everywhere; an ``(N,)`` array (e.g. from
        :func:`~breastlib.phantom.artefacts.fat_sat_quality_map`) acts per point.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` float32 signal (MRI arbitrary units, fat on T1 = 1000) or HU.
    """
    L = LABELS
    lab = labels.astype(np.intp)
    tex = aux["tex"]
    fat_like = (lab == L["fat"]) | (lab == L["mediastinum"])
    fgt = lab == L["fgt"]
    if contrast == "ct":
        out = _lookup(3)[lab].copy()
        bone = (lab == L["rib"]) | (lab == L["sternum"]) | (lab == L["spine"])
        out[bone] = 250.0 + 650.0 * (1.0 - aux["marrow"][bone])
        out[fgt] += 8.0 * tex[fgt]
        out[fat_like] += 6.0 * tex[fat_like] + 120.0 * aux["ligament"][fat_like]
        out[lab == L["lesion"]] += 10.0 * aux["rim"][lab == L["lesion"]]
        return out.astype(np.float32)
    column = {"t1": 0, "t1fs": 1, "post": 1, "t2": 2}.get(contrast)
    if column is None:
        raise ValueError(f"contrast must be one of t1, t1fs, post, t2, ct, not {contrast!r}")
    out = _lookup(column)[lab].copy()
    # Texture: FGT varies with its local density, fat only a little.
    out[fgt] *= 1.0 + 0.12 * tex[fgt]
    out[fat_like] *= 1.0 + 0.025 * tex[fat_like]
    # Cooper's ligaments as partial-volume septa in the fat.
    lig = aux["ligament"]
    septa = fat_like & (lig > 0)
    out[septa] = out[septa] * (1.0 - 0.7 * lig[septa]) + 0.3 * lig[septa]
    bone = (lab == L["rib"]) | (lab == L["sternum"]) | (lab == L["spine"])
    marrow = aux["marrow"][bone]
    out[bone] = 0.05 + (out[bone] - 0.05) * marrow  # dark cortex, fatty (or suppressed) marrow
    heart = lab == L["heart"]
    blood = aux["blood"]
    if contrast in ("t1fs", "post"):
        # Imperfect fat suppression near the skin/air boundary.
        near_air = np.exp(-aux["depth"] / 4.0)
        residual = (FAT_SAT_RESIDUAL + 0.22 * near_air) / _suppression(fat_sat_quality)
        out[fat_like] = np.minimum(residual[fat_like], 0.8) * (1.0 + 0.05 * tex[fat_like])
        out[septa] = out[septa] * (1.0 - 0.5 * lig[septa]) + 0.35 * lig[septa]
    if contrast == "t2":
        out[heart] *= 1.0 - 0.85 * blood[heart]  # black blood
    elif contrast == "t1":
        out[heart] *= 1.0 + 0.25 * blood[heart]
    if contrast == "post":
        enh = np.zeros(len(LABELS) + 1, dtype=np.float32)
        for name, value in _ENHANCEMENT.items():
            enh[L[name]] = value
        gain = enh[lab]
        gain[fgt] *= bpe * (1.0 + 0.3 * tex[fgt])
        les = lab == L["lesion"]
        gain[les] = 1.2 + 1.6 * aux["rim"][les]  # +120 % core, up to +280 % rim
        gain[heart] = 0.5 + 2.9 * blood[heart]
        out *= 1.0 + gain
    return (out * MRI_SCALE).astype(np.float32)
