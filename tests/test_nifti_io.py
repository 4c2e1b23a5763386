"""`.nii.gz` written by ISA-L: a standard gzip of nibabel's bytes, reproducible, atomic."""

from __future__ import annotations

import struct
import zlib

import nibabel as nib
import numpy as np
import pytest

from breastlib._nifti import save_nifti


def _image() -> nib.Nifti1Image:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(23, 17, 11, 1, 3))  # a float64 displacement, odd sizes
    affine = np.diag([0.7, 0.8, 2.2, 1.0])
    image = nib.Nifti1Image(data, affine)
    image.header.set_intent(1007, (), name="")
    return image


def test_gz_is_one_gzip_member_of_nibabels_own_bytes(tmp_path):
    image = _image()
    path = save_nifti(image, tmp_path / "field.nii.gz")
    raw = path.read_bytes()
    # RFC 1952 header: magic, deflate, no flags (so no file name), mtime 0.
    assert raw[:4] == b"\x1f\x8b\x08\x00" and struct.unpack("<I", raw[4:8])[0] == 0
    inflater = zlib.decompressobj(31)
    content = inflater.decompress(raw)
    assert inflater.eof and inflater.unused_data == b""  # one member, nothing after it
    assert content == image.to_bytes()
    loaded = nib.load(path)
    np.testing.assert_array_equal(np.asarray(loaded.dataobj), image.get_fdata())
    assert int(loaded.header["intent_code"]) == 1007


def test_same_image_gives_the_same_bytes(tmp_path):
    image = _image()
    first = save_nifti(image, tmp_path / "a.nii.gz").read_bytes()
    second = save_nifti(image, tmp_path / "b.nii.gz").read_bytes()
    assert first == second


def test_plain_nii_is_written_uncompressed(tmp_path):
    image = _image()
    assert save_nifti(image, tmp_path / "field.nii").read_bytes() == image.to_bytes()


def test_a_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "field.nii.gz"
    path.write_bytes(b"an earlier result")

    class Broken:
        def to_stream(self, stream):
            stream.write(b"\0" * 100_000)
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        save_nifti(Broken(), path)
    assert path.read_bytes() == b"an earlier result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["field.nii.gz"]
