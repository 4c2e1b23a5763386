"""`breastlib data`: the pinned registry, verified downloads (resume, mirror, repair) and
the real DICOM exam read with the right geometry.

Downloads run the real code against an HTTP server on 127.0.0.1 that serves the local
mirror of the real data; every other address is blocked, so nothing reaches the internet.
The mirror is ``../shared/realdata`` beside the repository (``$BREASTLIB_TEST_REALDATA``
overrides it); the tests that need it are skipped, with the reason, where it is absent.
"""

from __future__ import annotations

import csv
import http.server
import re
import socket
import threading
import urllib.parse
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from realdata import REALDATA, needs_realdata

from breastlib import datasets
from breastlib.cli import main
from breastlib.datasets import DataFile, DatasetError

#: A small subset for the download tests: a licence text, a DCE slice and a T2 slice.
SUBSET = ["LICENSE-AGPL-3.0", "s08_pre/IM763", "s03_t2_tse/IM2290"]
SERIES = ("s08_pre", "s09_post1", "s19_post5", "s03_t2_tse")


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    """Fail the test if anything tries to resolve or connect to a non-loopback address."""
    attempts: list[object] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        if host not in ("127.0.0.1", b"127.0.0.1"):
            attempts.append(host)
            raise socket.gaierror(f"the tests block the network ({host})")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] != "127.0.0.1":
            attempts.append(address)
            raise OSError(f"the tests block the network ({address})")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    yield attempts
    assert attempts == [], f"the test tried to reach the network: {attempts}"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """A private data cache and no mirror from the environment."""
    folder = tmp_path / "data"
    monkeypatch.setenv("BREASTLIB_DATA", str(folder))
    monkeypatch.delenv("BREASTLIB_DATA_MIRROR", raising=False)
    return folder


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET ``/mirror/<NAME>/<file>`` (the mirror layout) and ``/upstream/<upstream_path>``
    (GitHub's), with byte ranges, missing files, tampered bytes and one-off cuts."""

    def do_GET(self):
        srv = self.server
        path = urllib.parse.unquote(self.path.split("?")[0])
        srv.log.append((path, self.headers.get("Range")))
        local = srv.route(path)
        if local is None or path in srv.missing:
            self.send_error(404)
            return
        data = local.read_bytes()
        if path in srv.tamper:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if match:
            start = int(match[1])
            end = int(match[2]) if match[2] else len(data) - 1
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            body = data[start:end + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        cut = srv.cut_once.pop(path, None)
        self.wfile.write(body if cut is None else body[:cut])  # then HTTP/1.0 closes

    def log_message(self, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.upstream = {f.upstream_path: root / "uta11" / f.file
                         for f in datasets.get_dataset("uta11").files}
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.reset()

    def reset(self) -> None:
        self.log: list[tuple[str, str | None]] = []
        self.missing: set[str] = set()
        self.tamper: set[str] = set()
        self.cut_once: dict[str, int] = {}

    def route(self, path: str) -> Path | None:
        if path.startswith("/mirror/"):
            local = (self.root / path.removeprefix("/mirror/")).resolve()
            inside = local.is_relative_to(self.root.resolve())
            return local if inside and local.is_file() else None
        if path.startswith("/upstream/"):
            return self.upstream.get(path.removeprefix("/upstream/"))
        return None

    def requests_for(self, prefix: str) -> list[tuple[str, str | None]]:
        return [entry for entry in self.log if entry[0].startswith(prefix)]


@pytest.fixture(scope="module")
def _server():
    if not (REALDATA / "uta11" / "files.csv").is_file():
        pytest.skip(f"the real-data mirror is absent ({REALDATA}; set BREASTLIB_TEST_REALDATA)")
    server = _Server(REALDATA)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def server(_server):
    _server.reset()
    return _server


def served(server: _Server, files: list[str] = SUBSET) -> datasets.Dataset:
    """uta11 restricted to ``files``, its upstream being the local server."""
    return replace(datasets.get_dataset("uta11").subset(files),
                   base_url=f"{server.url}/upstream")


def upstream_path(server: _Server, file: str) -> str:
    entry = next(f for f in datasets.get_dataset("uta11").files if f.file == file)
    return f"/upstream/{entry.upstream_path}"


def one_line_error(capsys, argv: list[str]) -> str:
    """Run the CLI, expect exit 2 and one ``breastlib: error:`` line; return it."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("breastlib: error: ")
    return err


# -- the registry --------------------------------------------------------------------------
def test_registry_pins_every_file_with_licence_and_citation():
    assert "uta11" in datasets.dataset_names()
    ds = datasets.get_dataset("uta11")
    files = [f.file for f in ds.files]
    assert len(files) == len(set(files)) == 540
    assert all(re.fullmatch(r"[0-9a-f]{64}", f.sha256) and f.bytes > 0 for f in ds.files)
    assert set(ds.license_files) <= set(files)
    assert {f.series for f in ds.files if f.series} == set(ds.series) == set(SERIES)
    assert all(f.file.startswith(f"{f.series}/") for f in ds.files if f.series)
    assert ds.commit in ds.base_url and ds.license and "doi:" in ds.citation
    assert ds.upstream_url(ds.files[0]).startswith("https://raw.githubusercontent.com/")


@needs_realdata
def test_registry_matches_the_mirror_files_csv():
    """The shipped registry was derived from the mirror's files.csv plus its licences."""
    ds = datasets.get_dataset("uta11")
    with open(REALDATA / "uta11" / "files.csv", newline="") as handle:
        rows = [DataFile(r["series"], r["file"], r["upstream_path"], int(r["bytes"]),
                         r["sha256"]) for r in csv.DictReader(handle)]
    assert [f for f in ds.files if f.series] == rows
    for name in ds.license_files:
        local = REALDATA / "uta11" / name
        entry = ds.subset([name]).files[0]
        assert (entry.bytes, entry.sha256) == (local.stat().st_size,
                                               datasets.file_sha256(local))


def test_unknown_names_and_bad_mirror_are_one_line_errors(capsys, tmp_path, monkeypatch):
    assert "unknown dataset 'nope'" in one_line_error(capsys, ["data", "fetch", "nope"])
    assert "no series 's99'" in one_line_error(capsys, ["data", "path", "uta11", "s99"])
    monkeypatch.setenv("BREASTLIB_DATA_MIRROR", str(tmp_path / "no-such-folder"))
    assert "no-such-folder" in one_line_error(capsys, ["data", "fetch", "uta11"])


def test_path_of_an_unfetched_dataset_names_the_missing_file(capsys, cache):
    err = one_line_error(capsys, ["data", "path", "uta11"])
    assert str(cache / "uta11") in err and "missing" in err and "breastlib data fetch" in err


# -- downloads -----------------------------------------------------------------------------
def test_fetch_over_http_verifies_checksums(server, cache):
    ds = served(server)
    result = datasets.fetch(ds, progress=False)
    assert result.fetched == SUBSET and result.from_upstream == 3 and not result.from_mirror
    for entry in ds.files:
        path = cache / "uta11" / entry.file
        assert datasets.file_sha256(path) == entry.sha256
        assert path.stat().st_mode & 0o044 == 0o044  # not left private by pooch's tempfile
    assert datasets.check(ds) == dict.fromkeys(SUBSET, "ok")
    assert not (cache / "uta11" / datasets.PARTIAL_DIR).exists()
    assert (cache / "uta11" / "ATTRIBUTION.txt").read_text().count(ds.citation) == 1
    # Bytes that do not match the pinned hash are never kept, however often retried.
    server.reset()
    bad = "s08_pre/IM764"
    server.tamper.add(upstream_path(server, bad))
    with pytest.raises(DatasetError,
                       match=rf"uta11/{bad}: could not be fetched .* after 2 attempts .*SHA-256"):
        datasets.fetch(served(server, [bad]), progress=False, retries=1)
    assert len(server.log) == 2 and not (cache / "uta11" / bad).exists()


def test_interrupted_download_is_resumed_with_a_range_request(server, cache):
    file, cut = "s03_t2_tse/IM2290", 200_000
    ds = served(server, [file])
    url = upstream_path(server, file)
    # Within one fetch: the connection drops, pooch retries, the retry continues.
    server.cut_once[url] = cut
    result = datasets.fetch(ds, progress=False, retries=2)
    assert result.fetched == [file]
    assert [(p, r and re.sub(r"\d+", "N", r)) for p, r in server.log] == [
        (url, None), (url, "bytes=N-")]
    assert 0 < int(server.log[1][1][6:-1]) <= cut  # what had arrived before the cut
    assert datasets.check(ds) == {file: "ok"}
    # Across runs: a fetch that gives up keeps the partial file; the next one continues it.
    (cache / "uta11" / file).unlink()
    server.reset()
    server.cut_once[url] = cut
    with pytest.raises(DatasetError, match="run the fetch again to continue"):
        datasets.fetch(ds, progress=False, retries=0)
    part = cache / "uta11" / datasets.PARTIAL_DIR / f"{file}.part"
    kept = part.stat().st_size
    assert 0 < kept <= cut and not (cache / "uta11" / file).exists()
    datasets.fetch(ds, progress=False, retries=0)
    assert server.log == [(url, None), (url, f"bytes={kept}-")]
    assert datasets.check(ds) == {file: "ok"} and not part.exists()


def test_corrupted_cached_file_is_detected_and_fetched_again(server, cache):
    ds = served(server)
    datasets.fetch(ds, progress=False)
    victim = cache / "uta11" / "s08_pre" / "IM763"
    data = bytearray(victim.read_bytes())
    data[5000] ^= 0x01  # one bit, same size
    victim.write_bytes(bytes(data))
    assert datasets.check(ds)["s08_pre/IM763"] == "corrupt"
    server.reset()
    result = datasets.fetch(ds, progress=False)
    assert result.fetched == result.replaced == ["s08_pre/IM763"]
    assert server.log == [(upstream_path(server, "s08_pre/IM763"), None)]
    assert datasets.check(ds) == dict.fromkeys(SUBSET, "ok")


def test_missing_file_is_named_in_a_one_line_error(server, cache, capsys, monkeypatch):
    ghost = DataFile("s08_pre", "s08_pre/IM_GHOST", "dataset/nowhere/IM_GHOST", 10, "0" * 64)
    ds = served(server)
    ds = replace(ds, files=(*ds.files, ghost))
    monkeypatch.setattr(datasets, "get_dataset", lambda name: ds)
    monkeypatch.setenv("BREASTLIB_DATA_MIRROR", f"{server.url}/mirror")
    err = one_line_error(capsys, ["data", "fetch", "uta11", "--quiet"])
    assert "uta11/s08_pre/IM_GHOST: not found" in err
    assert "/mirror/uta11/s08_pre/IM_GHOST: HTTP 404" in err and "nowhere/IM_GHOST" in err
    err = one_line_error(capsys, ["data", "path", "uta11"])
    assert str(cache / "uta11" / "s08_pre" / "IM_GHOST") in err


def test_second_fetch_does_nothing(server, cache, capsys, monkeypatch):
    ds = served(server)
    monkeypatch.setattr(datasets, "get_dataset", lambda name: ds)
    assert main(["data", "fetch", "uta11", "--quiet"]) == 0
    assert "fetched 3 of 3 files (0 from the mirror, 3 from upstream)" in capsys.readouterr().out
    stamps = {p: p.stat().st_mtime_ns for p in (cache / "uta11").rglob("*")}
    server.reset()
    assert main(["data", "fetch", "uta11", "--quiet"]) == 0
    assert "uta11: up to date (3 files" in capsys.readouterr().out
    assert server.log == []
    assert {p: p.stat().st_mtime_ns for p in (cache / "uta11").rglob("*")} == stamps


def test_mirror_is_tried_before_the_network(server, cache, no_internet):
    # The upstream is the real GitHub URL, which the network block turns into a failure:
    # everything must come from the mirror (an http URL here).
    ds = datasets.get_dataset("uta11").subset(SUBSET)
    result = datasets.fetch(ds, mirror=f"{server.url}/mirror", progress=False)
    assert result.from_mirror == 3 and not result.from_upstream
    assert server.log == [(f"/mirror/uta11/{f}", None) for f in SUBSET]
    # A file the mirror lacks comes from upstream, after the mirror was asked.
    (cache / "uta11" / "s08_pre" / "IM763").unlink()
    server.reset()
    server.missing.add("/mirror/uta11/s08_pre/IM763")
    result = datasets.fetch(served(server), mirror=f"{server.url}/mirror", progress=False)
    assert (result.from_mirror, result.from_upstream) == (0, 1)
    assert server.log == [("/mirror/uta11/s08_pre/IM763", None),
                          (upstream_path(server, "s08_pre/IM763"), None)]
    assert no_internet == []


@needs_realdata
def test_full_fetch_through_the_cli_from_a_local_mirror(cache, capsys, monkeypatch):
    monkeypatch.setenv("BREASTLIB_DATA_MIRROR", str(REALDATA))
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "uta11" in out and "AGPL-3.0 and CC-BY-SA-4.0" in out and "[missing]" in out
    assert main(["data", "fetch", "uta11", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "fetched 540 of 540 files (540 from the mirror, 0 from upstream)" in out
    assert "doi:10.1145/3544548.3580682" in out
    assert datasets.check("uta11", verify=False) == dict.fromkeys(
        [f.file for f in datasets.get_dataset("uta11").files], "ok")
    assert main(["data", "path", "uta11"]) == 0
    assert capsys.readouterr().out.strip() == str(cache / "uta11")
    assert main(["data", "path", "uta11", "s08_pre"]) == 0
    series = Path(capsys.readouterr().out.strip())
    assert series == cache / "uta11" / "s08_pre" and len(list(series.iterdir())) == 160
    assert main(["data", "fetch", "uta11", "--quiet"]) == 0
    assert "uta11: up to date (540 files" in capsys.readouterr().out
    assert main(["data", "list"]) == 0
    assert "[fetched]" in capsys.readouterr().out


# -- the real exam: DICOM in, geometry right -----------------------------------------------
#: The grids the mirror's README states for each series (canonical X, Y, Z; mm).
EXPECTED_GRID = {
    "s08_pre": ((352, 352, 160), (1.0227, 1.0227, 1.2)),
    "s09_post1": ((352, 352, 160), (1.0227, 1.0227, 1.2)),
    "s19_post5": ((352, 352, 160), (1.0227, 1.0227, 1.2)),
    "s03_t2_tse": ((512, 512, 58), (0.6445, 0.6445, 3.3)),
}
RAS_FROM_LPS = np.array([-1.0, -1.0, 1.0])  # breastlib.grid.LPS_FLIP on points


def itk_series(folder: Path):
    """The independent oracle: SimpleITK's (GDCM's) own series reader."""
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def slice_positions_ras(folder: Path) -> np.ndarray:
    """ImagePositionPatient of every file, read from the headers alone, in RAS mm."""
    import SimpleITK as sitk

    positions = []
    for path in sorted(folder.iterdir()):
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        positions.append([float(v) for v in reader.GetMetaData("0020|0032").split("\\")])
    return np.array(positions) * RAS_FROM_LPS


@needs_realdata
@pytest.mark.parametrize("series", SERIES)
def test_real_dicom_series_grid_matches_simpleitk(series):
    import SimpleITK as sitk

    from breastlib.grid import LPS_FLIP
    from breastlib.volume import load_volume

    folder = REALDATA / "uta11" / series
    vol = load_volume(folder)
    image = itk_series(folder)
    shape, spacing = EXPECTED_GRID[series]
    assert vol.shape == shape and vol.grid.file_shape == image.GetSize()
    np.testing.assert_allclose(vol.spacing, spacing, atol=1e-4)
    np.testing.assert_allclose(vol.spacing, image.GetSpacing(), rtol=1e-6)
    # The file affine is ITK's LPS geometry flipped to RAS; canonical axes are RAS+.
    lps = np.eye(4)
    lps[:3, :3] = np.reshape(image.GetDirection(), (3, 3)) * image.GetSpacing()
    lps[:3, 3] = image.GetOrigin()
    np.testing.assert_allclose(vol.grid.file_affine, LPS_FLIP @ lps, atol=1e-6)
    np.testing.assert_allclose(vol.grid.file_affine[:3, 3], RAS_FROM_LPS * image.GetOrigin())
    np.testing.assert_allclose(vol.grid.direction, np.eye(3), atol=1e-9)
    # Each slice sits where its own header says (ImagePositionPatient), one per k.
    file_corner = vol.grid.file_affine @ np.c_[np.zeros((shape[2], 2)), np.arange(shape[2]),
                                                np.ones(shape[2])].T
    np.testing.assert_allclose(np.sort(slice_positions_ras(folder), axis=0),
                               np.sort(file_corner[:3].T, axis=0), atol=1e-3)
    # The same voxel holds the same value: ITK index -> ITK's LPS point -> RAS -> breastlib.
    rng = np.random.default_rng(0)
    index = rng.integers(0, image.GetSize(), (300, 3))
    points = np.array([image.TransformIndexToPhysicalPoint([int(v) for v in i])
                       for i in index]) * RAS_FROM_LPS
    canonical = vol.grid.world_to_index(points)
    np.testing.assert_allclose(canonical, np.round(canonical), atol=1e-4)
    values = sitk.GetArrayViewFromImage(image)[index[:, 2], index[:, 1], index[:, 0]]
    np.testing.assert_array_equal(vol.array[tuple(np.round(canonical).astype(int).T)],
                                  values.astype(np.float32))


@needs_realdata
def test_real_t2_and_dce_land_in_the_same_world():
    import SimpleITK as sitk

    from breastlib.volume import Volume, load_volume, sitk_to_array_affine

    pre_dir, t2_dir = REALDATA / "uta11" / "s08_pre", REALDATA / "uta11" / "s03_t2_tse"
    pre, t2 = load_volume(pre_dir), load_volume(t2_dir)
    pre_itk, t2_itk = itk_series(pre_dir), itk_series(t2_dir)
    # Bounding boxes: the T2 field of view lies (almost) inside the DCE one, which is larger.
    (lo_p, hi_p), (lo_t, hi_t) = pre.grid.world_bounds(), t2.grid.world_bounds()
    inter = np.prod(np.minimum(hi_p, hi_t) - np.maximum(lo_p, lo_t))
    assert pre.grid.overlaps(t2.grid)
    assert inter / np.prod(hi_t - lo_t) > 0.95 and 0.7 < inter / np.prod(hi_p - lo_p) < 0.9
    # Physical points land on the same voxel positions in breastlib and in ITK, in both.
    rng = np.random.default_rng(1)
    points = rng.uniform(np.maximum(lo_p, lo_t), np.minimum(hi_p, hi_t), (20, 3))
    for vol, image in ((pre, pre_itk), (t2, t2_itk)):
        ours = (np.linalg.inv(vol.grid.file_affine) @ np.c_[points, np.ones(len(points))].T)
        theirs = [image.TransformPhysicalPointToContinuousIndex((p * RAS_FROM_LPS).tolist())
                  for p in points]
        np.testing.assert_allclose(ours[:3].T, theirs, atol=1e-6)
    # T2 resampled through world coordinates onto (a coarser copy of) the DCE grid:
    # breastlib agrees with ITK.
    target_itk = pre_itk[::3, ::3, ::2]
    target = Volume.from_array(*sitk_to_array_affine(target_itk))
    ours = target.grid.to_file_order(t2.resample_to(target).array)
    theirs = sitk.GetArrayFromImage(sitk.Resample(
        sitk.Cast(t2_itk, sitk.sitkFloat32), target_itk, sitk.Transform(), sitk.sitkLinear, 0.0,
    )).transpose(2, 1, 0)
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.999
    assert np.median(np.abs(ours - theirs)[theirs > 0]) < 0.01 * theirs.max()
