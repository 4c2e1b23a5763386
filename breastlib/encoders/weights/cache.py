"""The local weights cache: where checkpoints live, their checksums, the explicit download.

Nothing here touches the network unless :func:`download` is called (by
``breastlib weights download NAME``). The cache directory is
``$BREASTLIB_WEIGHTS``, else ``~/.cache/breastlib/weights``; hashes of checkpoints with no
published SHA-256 are pinned locally in ``pins.json`` there. ``$BREASTLIB_WEIGHTS_MIRROR``
(a base URL, e.g. an institution's server or ``file:`` folder holding the files under
their cache names) replaces every publisher's URL, and also serves the checkpoints that
have no direct public download.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from breastlib._atomic import atomic_path, write_text_atomic
from breastlib.encoders.weights.registry import CHECKPOINTS, WeightsError, get_checkpoint


def weights_dir() -> Path:
    """The weights cache: ``$BREASTLIB_WEIGHTS`` else ``~/.cache/breastlib/weights``."""
    env = os.environ.get("BREASTLIB_WEIGHTS")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "breastlib" / "weights"


#: Environment variable naming a base URL that serves checkpoints under their cache names.
MIRROR_ENV = "BREASTLIB_WEIGHTS_MIRROR"


def download_url(name: str) -> str | None:
    """Where :func:`download` fetches ``name`` from: ``$BREASTLIB_WEIGHTS_MIRROR/<file
    name>`` when the mirror is set, else the publisher's direct URL (``None`` when the
    file can only be fetched by hand)."""
    ckpt = get_checkpoint(name)
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    return f"{mirror.rstrip('/')}/{ckpt.filename}" if mirror else ckpt.url


def checkpoint_path(name: str) -> Path:
    """Where ``name`` lives in the cache (whether or not it is there)."""
    return weights_dir() / get_checkpoint(name).filename


def _pins_path() -> Path:
    return weights_dir() / "pins.json"


def read_pins() -> dict[str, str]:
    """SHA-256 values pinned locally by ``verify --record``, by checkpoint name."""
    path = _pins_path()
    if not path.exists():
        return {}
    return {str(k): str(v) for k, v in json.loads(path.read_text()).items()}


def expected_sha256(name: str) -> tuple[str | None, str]:
    """The hash a checkpoint must have and where it comes from.

    Returns
    -------
    sha256 : str or None
        The published hash, else a local pin, else ``None``.
    origin : str
        ``"published"``, ``"pinned"`` or ``"unverified"``.
    """
    published = get_checkpoint(name).sha256
    if published:
        return published, "published"
    pinned = read_pins().get(name)
    return (pinned, "pinned") if pinned else (None, "unverified")


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, remembered in a ``.sha256`` sidecar keyed by size and mtime."""
    path = Path(path)
    stat = path.stat()
    stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.exists():
        parts = sidecar.read_text().split()
        if len(parts) == 2 and parts[1] == stamp:
            return parts[0]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    value = digest.hexdigest()
    try:
        write_text_atomic(sidecar, f"{value} {stamp}\n")
    except OSError:  # read-only location: hash again next time
        pass
    return value


def missing_message(name: str) -> str:
    """One message saying which file is missing, where it goes and how to get it."""
    ckpt = get_checkpoint(name)
    target = checkpoint_path(name)
    how = (
        f"run 'breastlib weights download {name}'"
        if ckpt.url
        else f"download it by hand from {ckpt.source}"
    )
    return (
        f"pretrained weights '{name}' not found: expected {target} "
        f"({ckpt.size}); {how}, or set BREASTLIB_WEIGHTS to the folder holding "
        f"{ckpt.filename}, or pass weights=PATH; use weights='random' to run without them"
    )


def locate(name: str) -> Path:
    """Path of a cached checkpoint, verified against its expected hash when one is known.

    Raises
    ------
    WeightsError
        The file is missing (message says where to put it and what to run) or its hash
        differs from the published or pinned one.
    """
    path = checkpoint_path(name)
    if not path.is_file():
        raise WeightsError(missing_message(name))
    check_sha256(name, path)
    return path


def check_sha256(name: str, path: Path) -> str:
    """Hash ``path``; raise when it differs from ``name``'s published or pinned hash."""
    actual = file_sha256(path)
    expected, origin = expected_sha256(name)
    if expected and actual != expected:
        raise WeightsError(
            f"{path}: SHA-256 {actual} does not match the {origin} hash {expected} of "
            f"'{name}'; the file is corrupt or a different checkpoint: delete it and run "
            f"'breastlib weights download {name}'"
        )
    return actual


def download(name: str, *, force: bool = False, timeout: float = 60.0) -> Path:
    """Fetch a checkpoint into the cache (the only function that uses the network).

    Parameters
    ----------
    name
        Registry name.
    force
        Download again even when the file is present.
    timeout
        Socket timeout in seconds.

    Returns
    -------
    Path
        The verified file in the cache.
    """
    import urllib.error
    import urllib.request

    ckpt = get_checkpoint(name)
    target = checkpoint_path(name)
    if target.is_file() and not force:
        check_sha256(name, target)
        return target
    url = download_url(name)
    if url is None:
        raise WeightsError(
            f"'{name}' has no direct download: get {ckpt.filename} from {ckpt.source} and "
            f"put it at {target}, then run 'breastlib weights verify --record'"
        )
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            with atomic_path(target) as tmp, open(tmp, "wb") as out:
                for chunk in iter(lambda: response.read(1 << 22), b""):
                    digest.update(chunk)
                    out.write(chunk)
                expected, origin = expected_sha256(name)
                if expected and digest.hexdigest() != expected:
                    raise WeightsError(
                        f"downloaded '{name}' has SHA-256 {digest.hexdigest()}, not the "
                        f"{origin} {expected}; nothing was saved"
                    )
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise WeightsError(
            f"could not download '{name}' from {url} ({exc}); offline? put "
            f"{ckpt.filename} at {target} by hand"
        ) from exc
    return target


def verify(name: str, *, record: bool = False) -> dict[str, Any]:
    """Check a cached checkpoint's hash; with ``record``, pin unverified ones locally.

    Returns
    -------
    dict
        ``{name, path, present, sha256, expected, origin, ok}``.
    """
    path = checkpoint_path(name)
    expected, origin = expected_sha256(name)
    row: dict[str, Any] = {
        "name": name, "path": str(path), "present": path.is_file(), "sha256": None,
        "expected": expected, "origin": origin, "ok": None,
    }
    if not row["present"]:
        return row
    actual = file_sha256(path)
    row["sha256"] = actual
    row["ok"] = None if expected is None else actual == expected
    if record and expected is None:
        pins = read_pins()
        pins[name] = actual
        write_text_atomic(_pins_path(), json.dumps(pins, indent=2, sort_keys=True) + "\n")
        row.update(expected=actual, origin="pinned", ok=True)
    return row


def registry_rows() -> list[dict[str, Any]]:
    """The registry as plain rows (for ``breastlib weights list``)."""
    rows = []
    for name, ckpt in CHECKPOINTS.items():
        row = asdict(ckpt)
        row["path"] = str(checkpoint_path(name))
        row["present"] = checkpoint_path(name).is_file()
        rows.append(row)
    return rows
