"""The pretrained study in one command: weights, study rows, book.

``python -m breastlib.booktools pretrained-study [--build full|small] [--no-book]``

1. downloads the checkpoints of the paper's five encoders (``breastlib weights download
   sam medsam sslsam dinov2 medclip``; a checkpoint that must be fetched by hand is named
   with the exact place to put it, and the study goes on without it);
2. verifies every cached checkpoint's SHA-256 (a mismatch stops here);
3. runs the book's study of every task with ``weights="auto"``
   (:func:`breastlib.booktools.data.book_results`): the random-weight rows it already has
   are kept, and pretrained rows are added for every encoder whose checkpoint is cached;
4. builds the book (``jupyter-book build``), whose chapters then show pretrained and
   random rows side by side and whose claims become testable.

The ``full`` build (the default: real resolution, the ``corrected`` profile at the paper's
settings) takes hours on a GPU; ``small`` runs on a CPU. Nothing here is run by CI, which
has no network: the pieces are tested on their own (the weights registry and download
against checkpoints served from 127.0.0.1, the study on the synthetic cohort).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

#: The paper's five encoders (their checkpoints: ``breastlib weights list``).
STUDY_ENCODERS = ("sam", "medsam", "sslsam", "dinov2", "medclip")


def download_and_verify(encoders: tuple[str, ...] = STUDY_ENCODERS) -> list[str]:
    """Download the encoders' checkpoints (going on past any that fail) and verify every
    cached one; return the encoders whose checkpoint is now cached and verified.

    Raises
    ------
    breastlib.encoders.weights.WeightsError
        A cached checkpoint's SHA-256 does not match its pin.
    """
    from breastlib.encoders import ENCODERS, checkpoint_names
    from breastlib.encoders import weights as w

    ready = []
    for name in checkpoint_names(encoders):
        try:
            path = w.download(name)
        except w.WeightsError as exc:  # its message says where the file belongs
            print(f"{name}: not downloaded: {exc}", file=sys.stderr)
            continue
        row = w.verify(name)
        if row["ok"] is False:
            raise w.WeightsError(f"{path}: SHA-256 {row['sha256']} does not match its pin: "
                                 "delete the file and download it again")
        print(f"{name:<20} {'verified' if row['ok'] else 'unpinned':<10} {path}")
        ready.append(name)
    return [e for e in encoders if ENCODERS[e].checkpoint in ready]


def run_pretrained_study(root: str | os.PathLike = ".", *, build: str = "full",
                         download: bool = True, book: bool = True, workers: int = 1,
                         encoders: tuple[str, ...] = STUDY_ENCODERS) -> int:
    """Steps 1-4 of the module's description, from the repository ``root``.

    ``encoders`` narrows the five (the others then run neither random nor pretrained).

    Returns
    -------
    int
        0 when the study (and the book, if asked) finished; 1 when no checkpoint of the
        five is available, so nothing pretrained could run.
    """
    from breastlib.booktools.data import BOOK_METHODS, BUILD_ENV, BUILDS, book_results

    root = Path(root).resolve()
    ready = download_and_verify(encoders) if download else [
        e for e in encoders if _cached(e)]
    if not ready:
        print("no pretrained checkpoint is available: see `breastlib weights list`",
              file=sys.stderr)
        return 1
    print(f"pretrained: {', '.join(ready)}; random only: "
          f"{', '.join(e for e in encoders if e not in ready) or 'none'}")
    os.environ[BUILD_ENV] = build
    chosen = BUILDS[build]
    here = Path.cwd()
    os.chdir(root / "book")  # the build's folders are relative to book/
    try:
        for task in chosen.pairs:
            methods = tuple(m for m in BOOK_METHODS if m not in STUDY_ENCODERS or m in
                            encoders)
            _, table = book_results(task, build=chosen, methods=methods,
                                    weights="auto", progress=True, workers=workers)
            failed = int((table["status"] == "failed").sum())
            print(f"{task}: {len(table)} rows, {failed} failed")
    finally:
        os.chdir(here)
    if book:
        command = Path(sys.executable).with_name("jupyter-book")  # beside this Python
        return subprocess.run([str(command), "build", str(root)], check=False).returncode
    return 0


def _cached(encoder: str) -> bool:
    from breastlib.encoders import weights_setting

    return weights_setting(encoder, "auto") == "pretrained"


def main(argv: list[str] | None = None) -> int:
    """``python -m breastlib.booktools pretrained-study``: see the module's description."""
    parser = argparse.ArgumentParser(
        prog="python -m breastlib.booktools pretrained-study",
        description="Download and verify the five encoders' checkpoints, run the book's "
        "study with pretrained weights beside the random ones, and rebuild the book.")
    parser.add_argument("--build", choices=("full", "small"), default="full",
                        help="full: real resolution, paper's settings (GPU, hours); "
                        "small: the CI-sized phantoms (CPU)")
    parser.add_argument("--no-download", action="store_true",
                        help="use the checkpoints already in the cache")
    parser.add_argument("--no-book", action="store_true", help="compute rows only")
    parser.add_argument("--workers", type=int, default=1,
                        help="rows computed in parallel (1 on a single GPU)")
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="repository root (default: .)")
    args = parser.parse_args(argv)
    return run_pretrained_study(args.root, build=args.build, download=not args.no_download,
                                book=not args.no_book, workers=args.workers)
