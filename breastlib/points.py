"""Landmark files: CSV with columns ``x,y,z`` in RAS millimetres, one point per row.

Rows of a fixed and a moving file correspond by order; extra columns (``kind``, ``id``)
are kept and written back.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from breastlib._atomic import write_text_atomic
from breastlib.errors import InputError

if TYPE_CHECKING:  # pandas costs a third of a second to import; only the readers need it
    import pandas as pd

COLUMNS = ("x", "y", "z")


def read_points(path: str | os.PathLike) -> pd.DataFrame:
    """Read a landmark CSV; raises :class:`InputError` naming the file on bad content."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    try:
        import pandas as pd

        table = pd.read_csv(path)
    except Exception as exc:
        raise InputError(f"cannot read points CSV ({exc})", path) from exc
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"points CSV lacks column(s) {', '.join(missing)} (need x,y,z in mm)",
                         path)
    coords = table[list(COLUMNS)]
    if not all(np.issubdtype(t, np.number) for t in coords.dtypes):
        raise InputError("points CSV has non-numeric x/y/z values", path)
    if len(table) == 0:
        raise InputError("points CSV holds no points", path)
    if not np.isfinite(coords.to_numpy(dtype=np.float64)).all():
        raise InputError("points CSV holds NaN/Inf coordinates", path)
    return table


def point_array(table: pd.DataFrame) -> np.ndarray:
    """The ``(N, 3)`` float64 RAS millimetre coordinates of a landmark table."""
    return table[list(COLUMNS)].to_numpy(dtype=np.float64)


def write_points(path: str | os.PathLike, points: np.ndarray, like: pd.DataFrame | None = None,
                 **extra_columns: np.ndarray) -> Path:
    """Write ``(N, 3)`` points as CSV (atomically), keeping the extra columns of ``like``."""
    import pandas as pd

    table = pd.DataFrame(np.asarray(points, dtype=np.float64), columns=list(COLUMNS))
    if like is not None:
        for column in like.columns:
            if column not in COLUMNS:
                table[column] = like[column].to_numpy()
    for name, values in extra_columns.items():
        table[name] = values
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, float_format="%.6f")
    return write_text_atomic(path, buffer.getvalue())
