"""The dataset registry: ``NAME.json`` (metadata) and ``NAME.csv`` (pinned files) here."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from breastlib.errors import BreastlibError

_HERE = Path(__file__).parent


class DatasetError(BreastlibError):
    """A dataset is unknown, incomplete, or a file of it cannot be fetched or verified."""


@dataclass(frozen=True)
class DataFile:
    """One pinned file of a dataset (a row of ``NAME.csv``)."""

    series: str
    file: str
    upstream_path: str
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Dataset:
    """A named dataset: its metadata and its pinned files.

    Parameters
    ----------
    name
        Registry key (``breastlib data fetch NAME``) and cache folder name.
    title, source, commit, license, attribution, citation
        What it is, where it is published (repository and pinned commit), under which
        licence, and how to credit it.
    base_url
        Upstream files are fetched from ``base_url/upstream_path``.
    license_files
        Files of the dataset that hold its licence texts.
    series
        One line of description per series folder.
    files
        Every pinned file.
    """

    name: str
    title: str
    source: str
    commit: str
    base_url: str
    license: str
    license_files: tuple[str, ...]
    attribution: str
    citation: str
    series: dict[str, str] = field(default_factory=dict)
    files: tuple[DataFile, ...] = ()

    @property
    def size(self) -> int:
        """Total size of the files in bytes."""
        return sum(f.bytes for f in self.files)

    def upstream_url(self, entry: DataFile) -> str:
        """Where ``entry`` is published at the pinned commit."""
        return f"{self.base_url.rstrip('/')}/{entry.upstream_path}"

    def subset(self, files: list[str]) -> Dataset:
        """The same dataset restricted to ``files`` (``file`` column values)."""
        by_name = {f.file: f for f in self.files}
        unknown = [f for f in files if f not in by_name]
        if unknown:
            raise DatasetError(f"{self.name}: no such file(s) in the registry: {unknown}")
        return replace(self, files=tuple(by_name[f] for f in files))

    def attribution_text(self) -> str:
        """The notice written beside the data as ``ATTRIBUTION.txt``."""
        return (
            f"{self.name}: {self.title}\n"
            f"Source: {self.source} (commit {self.commit})\n"
            f"Licence: {self.license} (see {', '.join(self.license_files)})\n"
            f"Attribution: {self.attribution}\n"
            f"Cite: {self.citation}\n"
        )


# -- registry ------------------------------------------------------------------------------
def dataset_names() -> list[str]:
    """Names of the datasets shipped with breastlib."""
    return sorted(p.stem for p in _HERE.glob("*.json") if (_HERE / f"{p.stem}.csv").is_file())


@cache
def _load(name: str) -> Dataset:
    meta = json.loads((_HERE / f"{name}.json").read_text(encoding="utf-8"))
    with open(_HERE / f"{name}.csv", newline="", encoding="utf-8") as handle:
        files = tuple(
            DataFile(series=row["series"], file=row["file"],
                     upstream_path=row["upstream_path"], bytes=int(row["bytes"]),
                     sha256=row["sha256"].lower())
            for row in csv.DictReader(handle)
        )
    return Dataset(
        name=meta["name"], title=meta["title"], source=meta["source"], commit=meta["commit"],
        base_url=meta["base_url"], license=meta["license"],
        license_files=tuple(meta["license_files"]), attribution=meta["attribution"],
        citation=meta["citation"], series=dict(meta.get("series", {})), files=files,
    )


def get_dataset(name: str | Dataset) -> Dataset:
    """Look a dataset up by name (a :class:`Dataset` is returned as it is)."""
    if isinstance(name, Dataset):
        return name
    if name not in dataset_names():
        raise DatasetError(
            f"unknown dataset '{name}': choose from {', '.join(dataset_names()) or 'none'}"
        )
    return _load(name)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
