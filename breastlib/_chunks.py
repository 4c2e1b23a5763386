"""Slabs of whole planes along a volume's first axis, for work done a bounded amount at a time."""

from __future__ import annotations

from collections.abc import Iterator


def plane_chunks(length: int, plane_elements: int, budget: int, *, multiple: int = 1
                 ) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` ranges covering ``range(length)`` planes, each of about ``budget``
    elements: ``max(1, budget // (plane_elements * multiple)) * multiple`` planes (a whole
    number of ``multiple``-plane cells, at least one), the last one shorter.

    Parameters
    ----------
    length
        Planes along the first axis.
    plane_elements
        Elements in one plane (everything the work touches per plane).
    budget
        Elements one chunk may hold.
    multiple
        Chunks start at multiples of this many planes (a pooling factor's cells).
    """
    rows = max(1, budget // max(plane_elements * multiple, 1)) * multiple
    for start in range(0, length, rows):
        yield start, min(start + rows, length)
