"""The downloader :func:`breastlib.datasets.fetch` hands to pooch: mirror first, resumable.

Pooch (1.9) streams every attempt into a fresh temporary file and deletes it when the
attempt fails, so a retry or a second run starts again from byte zero. This downloader
keeps its own partial file, ``NAME/.partial/<file>.part``, which survives failed attempts
and interrupted runs: the next attempt asks the server for the rest with an HTTP
``Range: bytes=N-`` request (a server that ignores it answers ``200`` and the file is
written from the start). The finished file is checked against its SHA-256 before it is
handed to pooch, which checks it again and moves it into place.

Sources are tried in order, the mirror first: a file the mirror lacks, or holds with the
wrong hash, or cannot serve, is taken from upstream. Network errors and a wrong hash from
upstream are raised as ``requests`` exceptions / ``ValueError``, which pooch retries; a
file that no source has raises :class:`~breastlib.datasets.DatasetError` at once.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import requests

from breastlib.datasets._registry import DataFile, DatasetError, file_sha256

_CHUNK = 1 << 16


class _NotFound(Exception):
    """The source does not have the file (HTTP 404/410, or no such local file)."""


class ResumingDownloader:
    """A pooch downloader for one file: ``downloader(url, output_file, pooch)``.

    Parameters
    ----------
    name
        Dataset name (the mirror holds the file at ``NAME/<file>``).
    entry
        The pinned file.
    part
        Where the partial download is kept between attempts and runs.
    mirror
        A local folder (:class:`Path`) or an ``http(s)://`` URL, or ``None``.
    timeout
        Socket timeout in seconds.
    progress
        A tqdm bar to advance by the bytes received.
    """

    def __init__(self, name: str, entry: DataFile, part: Path, *,
                 mirror: str | Path | None, timeout: float, progress: Any = None) -> None:
        self.name = name
        self.entry = entry
        self.part = part
        self.mirror = mirror
        self.timeout = timeout
        self.progress = progress
        #: "mirror" or "upstream": where the file finally came from.
        self.used: str | None = None
        self._upstream: str | None = None

    def _sources(self, url: str) -> list[tuple[str, str | Path]]:
        sources: list[tuple[str, str | Path]] = []
        if isinstance(self.mirror, Path):
            sources.append(("mirror", self.mirror / self.name / self.entry.file))
        elif self.mirror:
            sources.append(("mirror", f"{self.mirror}/{self.name}/{self.entry.file}"))
        sources.append(("upstream", url))
        return sources

    def describe_sources(self) -> str:
        """The places tried, for error messages."""
        return " then ".join(str(s) for _, s in self._sources(self._upstream or "upstream"))

    def __call__(self, url: str, output_file: str, pooch: Any) -> None:
        self._upstream = url
        missing = []
        for kind, source in self._sources(url):
            try:
                if isinstance(source, Path):
                    self._copy(source)
                else:
                    self._download(source)
            except _NotFound as exc:
                missing.append(str(exc))
                continue
            except (requests.RequestException, OSError):
                if kind == "mirror":  # an unreachable mirror is not fatal: go upstream
                    continue
                raise  # pooch retries; the next attempt continues the .part file
            actual = file_sha256(self.part)
            if actual != self.entry.sha256:
                self.part.unlink()
                self._advance(-self.entry.bytes)
                if kind == "mirror":
                    continue
                raise ValueError(
                    f"{source}: SHA-256 {actual} is not the registered {self.entry.sha256}"
                )
            os.replace(self.part, output_file)
            self.used = kind
            return
        raise DatasetError(
            f"{self.name}/{self.entry.file}: not found ({'; '.join(missing)})"
        )

    # -- sources -------------------------------------------------------------------------
    def _advance(self, n: int) -> None:
        if self.progress is not None and n:
            self.progress.update(n)

    def _copy(self, source: Path) -> None:
        if not source.is_file():
            raise _NotFound(f"{source}: no such file")
        self.part.parent.mkdir(parents=True, exist_ok=True)
        self._advance(-self._have())
        shutil.copyfile(source, self.part)
        self._advance(self._have())

    def _have(self) -> int:
        return self.part.stat().st_size if self.part.is_file() else 0

    def _download(self, url: str) -> None:
        self.part.parent.mkdir(parents=True, exist_ok=True)
        have = self._have()
        if have > self.entry.bytes:
            self.part.unlink()
            self._advance(-have)
            have = 0
        if have == self.entry.bytes:
            return  # complete from an earlier attempt; the hash check decides
        # identity: a compressed transfer would make byte ranges meaningless.
        headers = {"Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        with requests.get(url, headers=headers, stream=True, timeout=self.timeout) as response:
            if response.status_code in (404, 410):
                raise _NotFound(f"{url}: HTTP {response.status_code}")
            if response.status_code == 416:  # the .part is not a prefix of the file
                self.part.unlink()
                self._advance(-have)
            response.raise_for_status()
            resumed = (have and response.status_code == 206
                       and response.headers.get("Content-Range", "").startswith(
                           f"bytes {have}-"))
            if not resumed:
                self._advance(-have)
                have = 0
            with open(self.part, "ab" if resumed else "wb") as out:
                for chunk in response.iter_content(_CHUNK):
                    out.write(chunk)
                    self._advance(len(chunk))
        got = self._have()
        if got != self.entry.bytes:
            raise requests.ConnectionError(
                f"{url}: connection closed after {got} of {self.entry.bytes} bytes"
            )
