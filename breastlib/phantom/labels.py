"""Tissue labels of the synthetic cohort: one integer per tissue, written to ``labels.json``.

Names are plain tissue names. Only ``fat`` contains "fat" and only ``fgt`` contains
"fgt"/"fibro"/"gland", so downstream code can select tissue classes by name.
"""

from __future__ import annotations

#: ``{name: value}`` of every tissue the generator draws (0 is air / background).
LABELS: dict[str, int] = {
    "background": 0,
    "fat": 1,
    "fgt": 2,
    "skin": 3,
    "nipple": 4,
    "ligament": 5,
    "vessel": 6,
    "lesion": 7,
    "pectoralis": 8,
    "chest_wall": 9,
    "rib": 10,
    "sternum": 11,
    "lung": 12,
    "heart": 13,
    "liver": 14,
    "mediastinum": 15,
    "spine": 16,
}

N_LABELS = max(LABELS.values()) + 1
