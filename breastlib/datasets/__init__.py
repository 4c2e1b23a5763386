"""Named public datasets: a pinned registry, a verified local cache, ``breastlib data``.

Each dataset ships as two files beside this module: ``NAME.json`` (title, source, pinned
upstream commit, licence, attribution, citation) and ``NAME.csv``, one row per file with
the columns ``series, file, upstream_path, bytes, sha256``. ``file`` is the file's path
inside the dataset's cache folder: one folder per series (a DICOM series folder that
``breastlib register`` reads as it is) and the licence texts at the top.

Nothing is downloaded except by :func:`fetch`, which takes each file, in this order, from

1. the mirror ``$BREASTLIB_DATA_MIRROR`` (or ``mirror=``): a local folder, a ``file://``
   or an ``http(s)://`` URL laid out as ``NAME/<file>``;
2. the upstream URL ``base_url/upstream_path`` at the pinned commit.

Every file is verified by SHA-256 whatever its source, and a file already in the cache is
hashed again on each :func:`fetch`: kept when it matches, fetched again when it does not.
The cache is ``$BREASTLIB_DATA``, else ``data/`` in the user cache folder
(``pooch.os_cache("breastlib")``). Pooch drives each file (cache check, retries, hash
check, atomic move into place); pooch itself restarts a failed download from zero, so the
downloader it is given here (:mod:`breastlib.datasets._download`) keeps partial files in
``NAME/.partial/`` and continues them with HTTP ``Range`` requests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from breastlib.datasets._registry import (
    DataFile,
    Dataset,
    DatasetError,
    dataset_names,
    file_sha256,
    get_dataset,
)

__all__ = [
    "DataFile", "Dataset", "DatasetError", "FetchResult", "check", "data_dir",
    "dataset_folder", "dataset_names", "dataset_path", "fetch", "file_sha256", "get_dataset",
    "mirror_location",
]

#: Name of the folder (inside a dataset's cache folder) holding interrupted downloads.
PARTIAL_DIR = ".partial"
#: Written beside the data on every fetch: where it comes from, its licence and citation.
ATTRIBUTION_FILE = "ATTRIBUTION.txt"


# -- locations -----------------------------------------------------------------------------
def data_dir() -> Path:
    """The data cache: ``$BREASTLIB_DATA``, else ``data/`` in the user cache folder."""
    env = os.environ.get("BREASTLIB_DATA")
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("breastlib")) / "data"


def mirror_location(mirror: str | os.PathLike | None = None) -> str | Path | None:
    """The mirror to try first: ``mirror``, else ``$BREASTLIB_DATA_MIRROR``, else none.

    Returns an ``http(s)://`` URL as a string, or a local folder as a :class:`Path`.
    """
    value = os.fspath(mirror) if mirror is not None else os.environ.get("BREASTLIB_DATA_MIRROR")
    if not value:
        return None
    if value.startswith(("http://", "https://")):
        return value.rstrip("/")
    if value.startswith("file://"):
        from urllib.parse import unquote, urlparse

        value = unquote(urlparse(value).path)
    folder = Path(value).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"{folder}: data mirror (BREASTLIB_DATA_MIRROR) is not a folder")
    return folder


def dataset_folder(name: str | Dataset) -> Path:
    """Where a dataset lives in the cache, fetched or not."""
    return data_dir() / get_dataset(name).name


# -- checking ------------------------------------------------------------------------------
def check(name: str | Dataset, *, verify: bool = True) -> dict[str, str]:
    """The state of every file in the cache: ``"ok"``, ``"missing"`` or ``"corrupt"``.

    Parameters
    ----------
    verify
        Hash every present file (``False``: compare sizes only, which is quick).
    """
    dataset = get_dataset(name)
    folder = dataset_folder(dataset)
    state = {}
    for entry in dataset.files:
        path = folder / entry.file
        if not path.is_file():
            state[entry.file] = "missing"
        elif path.stat().st_size != entry.bytes or (
            verify and file_sha256(path) != entry.sha256
        ):
            state[entry.file] = "corrupt"
        else:
            state[entry.file] = "ok"
    return state


def dataset_path(name: str | Dataset, series: str | None = None) -> Path:
    """The folder of a fetched dataset (or of one of its series).

    Checks that every file is present with its registered size (hashes are checked by
    :func:`fetch`).

    Raises
    ------
    DatasetError
        Unknown dataset or series, or a file is missing: the message names it.
    """
    dataset = get_dataset(name)
    folder = dataset_folder(dataset)
    if series is not None and series not in {f.series for f in dataset.files if f.series}:
        known = sorted({f.series for f in dataset.files if f.series})
        raise DatasetError(f"{dataset.name} has no series '{series}': choose from "
                           f"{', '.join(known)}")
    entries = [f for f in dataset.files if series is None or f.series == series]
    state = check(dataset.subset([f.file for f in entries]), verify=False)
    bad = [f for f, s in state.items() if s != "ok"]
    if bad:
        raise DatasetError(
            f"{folder / bad[0]}: {state[bad[0]]} ({len(bad)} of {len(state)} files of "
            f"{dataset.name} missing or incomplete); run 'breastlib data fetch {dataset.name}'"
        )
    return folder / series if series is not None else folder


# -- fetching ------------------------------------------------------------------------------
@dataclass
class FetchResult:
    """What :func:`fetch` did."""

    name: str
    path: Path
    files: int
    bytes: int
    fetched: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    from_mirror: int = 0
    from_upstream: int = 0

    @property
    def up_to_date(self) -> bool:
        """True when every file was already present and verified (nothing fetched)."""
        return not self.fetched


def fetch(
    name: str | Dataset,
    *,
    mirror: str | os.PathLike | None = None,
    progress: bool | None = None,
    retries: int = 3,
    timeout: float = 60.0,
) -> FetchResult:
    """Fetch every missing or corrupt file of a dataset into the cache, verified.

    Parameters
    ----------
    name
        Registry name, or a :class:`Dataset` (e.g. a :meth:`Dataset.subset`).
    mirror
        Local folder or URL laid out as ``NAME/<file>``, tried before the upstream URL;
        default ``$BREASTLIB_DATA_MIRROR``.
    progress
        Show a progress bar of the bytes to fetch (default: when stderr is a terminal).
    retries
        Further attempts per file after a network error or a checksum mismatch
        (pooch's ``retry_if_failed``); each attempt continues the partial file.
    timeout
        Socket timeout in seconds.

    Returns
    -------
    FetchResult
        ``up_to_date`` is true when everything was present and verified: nothing was
        copied or downloaded.

    Raises
    ------
    DatasetError
        A file is in neither the mirror nor upstream (the message names it), or keeps
        failing its checksum or the network after ``retries`` more attempts.
    """
    import logging
    import sys

    import pooch
    import requests
    from tqdm.auto import tqdm

    from breastlib._atomic import write_text_atomic
    from breastlib.datasets._download import ResumingDownloader

    dataset = get_dataset(name)
    folder = dataset_folder(dataset)
    source = mirror_location(mirror)
    state = check(dataset, verify=True)
    todo = [f for f in dataset.files if state[f.file] != "ok"]
    result = FetchResult(name=dataset.name, path=folder, files=len(dataset.files),
                         bytes=dataset.size)
    if todo:
        registry = {f.file: f"sha256:{f.sha256}" for f in dataset.files}
        urls = {f.file: dataset.upstream_url(f) for f in dataset.files}
        pup = pooch.create(path=folder, base_url=dataset.base_url.rstrip("/") + "/",
                           registry=registry, urls=urls, retry_if_failed=retries)
        logger = pooch.get_logger()
        level = logger.level
        logger.setLevel(logging.WARNING)  # not one line per file
        show = sys.stderr.isatty() if progress is None else progress
        bar = tqdm(total=sum(f.bytes for f in todo), unit="B", unit_scale=True,
                   desc=dataset.name, disable=not show, leave=False)
        try:
            for entry in todo:
                downloader = ResumingDownloader(
                    dataset.name, entry, folder / PARTIAL_DIR / f"{entry.file}.part",
                    mirror=source, timeout=timeout, progress=bar,
                )
                try:
                    pup.fetch(entry.file, downloader=downloader)
                except (ValueError, requests.RequestException, OSError) as exc:
                    detail = " ".join(str(exc).split())
                    raise DatasetError(
                        f"{dataset.name}/{entry.file}: could not be fetched from "
                        f"{downloader.describe_sources()} after {retries + 1} attempts "
                        f"({type(exc).__name__}: {detail}); run the fetch again to continue"
                    ) from exc
                _normal_permissions(folder / entry.file)
                result.fetched.append(entry.file)
                if state[entry.file] == "corrupt":
                    result.replaced.append(entry.file)
                if downloader.used == "mirror":
                    result.from_mirror += 1
                else:
                    result.from_upstream += 1
        finally:
            bar.close()
            logger.setLevel(level)
            _remove_empty_dirs(folder / PARTIAL_DIR)
    attribution = folder / ATTRIBUTION_FILE
    text = dataset.attribution_text()
    if not attribution.is_file() or attribution.read_text(encoding="utf-8") != text:
        write_text_atomic(attribution, text)
    return result


def _normal_permissions(path: Path) -> None:
    """Pooch's temporary files are private (0600); give the data the usual permissions."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _remove_empty_dirs(root: Path) -> None:
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    if not any(root.iterdir()):
        root.rmdir()
