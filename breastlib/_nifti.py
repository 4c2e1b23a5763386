"""Writing NIfTI files, with ``.nii.gz`` compressed by ISA-L (python-isal).

nibabel compresses ``.nii.gz`` with zlib at level 1. Writing the float64 displacement of a
small phantom pair (37 MB before compression) took 0.52 s of a 5 s ``breastlib register``
on 2 CPU cores; ISA-L's level 1 writes the same file in 0.09 s, a standard single-member
gzip of about the same size that every NIfTI reader opens. The gzip header carries no file
name and no time stamp, so the same image always gives the same bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
from isal import igzip

from breastlib._atomic import atomic_path

#: ISA-L's level 1: its fastest level that still compresses as well as zlib's level 1.
GZIP_LEVEL = 1


def save_nifti(image: nib.Nifti1Image, path: str | os.PathLike) -> Path:
    """Write ``image`` to ``path`` atomically (nibabel's layout; gzip when ``.gz``).

    Parameters
    ----------
    image
        A single-file NIfTI image (``nibabel.Nifti1Image`` or ``Nifti2Image``).
    path
        ``.nii.gz`` (compressed here) or ``.nii`` (written by nibabel).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.name.lower().endswith(".gz"):
            with open(tmp, "wb") as raw, igzip.IGzipFile(
                    filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=raw,
                    mtime=0) as stream:
                image.to_stream(stream)
        else:
            nib.save(image, tmp)
    return path
