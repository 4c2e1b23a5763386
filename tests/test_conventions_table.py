"""The profile table of book/conventions.md states each profile's values as the code has
them: a change of a default without the table (or the other way round) fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from breastlib.profiles import get_profile
from breastlib.profiles.params import field_names

CONVENTIONS = Path(__file__).resolve().parents[1] / "book" / "conventions.md"
COLUMNS = ("corrected", "convexadam", "fast")


def _profile_rows() -> dict[str, list[str]]:
    """``{parameter: [corrected, convexadam, fast]}`` as the table writes them."""
    rows = {}
    for line in CONVENTIONS.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`") and cells[0].strip("`") in field_names():
            rows[cells[0].strip("`")] = cells[2:]
    return rows


def _as_value(text: str) -> object:
    parts = [p.strip() for p in text.split(",")]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        return text
    return numbers if len(numbers) > 1 else numbers[0]


def test_the_table_lists_the_parameters_of_every_stage():
    rows = _profile_rows()
    assert {"convex_cell_mm", "adam_cell_mm", "adam_smooth_mm", "regularisation",
            "regularisation_cell_mm", "iterations", "init"} <= set(rows)


@pytest.mark.parametrize("column", range(len(COLUMNS)))
def test_every_value_in_the_table_is_the_profiles(column):
    profile = get_profile(COLUMNS[column])
    for name, cells in _profile_rows().items():
        text = cells[column]
        if text == "same":
            text = cells[0]
        actual = getattr(profile, name)
        expected = _as_value(text)
        if isinstance(actual, tuple):
            actual = [float(v) for v in actual]
        elif isinstance(actual, bool) or isinstance(actual, str):
            actual = str(actual)
        else:
            actual = float(actual)
        assert actual == expected, f"{name}: {COLUMNS[column]} has {actual!r}, the table {text!r}"
