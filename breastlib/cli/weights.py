"""``breastlib weights list | download NAME... | verify [NAME] [--record]``.

Registered by :mod:`breastlib.cli` through :func:`add_parser`; user errors raise
:class:`~breastlib.errors.BreastlibError`, which the command line prints without a
traceback and turns into a non-zero exit.
"""

from __future__ import annotations

import argparse

from breastlib.encoders import ENCODERS, checkpoint_names
from breastlib.encoders import weights as w


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``weights`` subcommand on the top-level parser's subparsers."""
    parser = subparsers.add_parser(
        "weights",
        help="list, download and verify pretrained encoder checkpoints",
        description=(
            "Manage the pretrained checkpoint cache ($BREASTLIB_WEIGHTS, else "
            "~/.cache/breastlib/weights). Nothing is downloaded except by 'download'."
        ),
    )
    sub = parser.add_subparsers(dest="weights_command", required=True, metavar="ACTION")
    sub.add_parser("list", help="show every checkpoint, its source, hash and cache status")
    dl = sub.add_parser(
        "download", help="fetch checkpoints into the cache",
        description=(
            "Fetch checkpoints into the cache and check their SHA-256. NAME is an encoder "
            f"as the study names it ({', '.join(ENCODERS)}), a checkpoint "
            f"({', '.join(w.CHECKPOINTS)}) or 'all'. Checkpoints with no direct public "
            f"download are listed with where to put them by hand (or served by "
            f"${w.MIRROR_ENV}, a base URL holding the files under their cache names)."))
    dl.add_argument("names", nargs="+", metavar="NAME",
                    help="encoders, checkpoints or 'all'")
    dl.add_argument("--force", action="store_true", help="download again if present")
    ver = sub.add_parser("verify", help="check the SHA-256 of cached checkpoints")
    ver.add_argument("name", nargs="?", choices=sorted(w.CHECKPOINTS), metavar="NAME",
                     help="only this checkpoint (default: all present)")
    ver.add_argument("--record", action="store_true",
                     help="pin the hash of unverified files in pins.json")
    parser.set_defaults(func=run)


def _list() -> int:
    print(f"weights cache: {w.weights_dir()}")
    for row in w.registry_rows():
        sha, origin = w.expected_sha256(row["name"])
        status = "present" if row["present"] else "missing"
        how = "download" if row["url"] else "manual"
        print(f"{row['name']:<20} {status:<8} {row['size']:>9}  {how:<8} "
              f"sha256={sha or 'unverified'} ({origin})")
        print(f"{'':<20} {row['filename']}  <- {row['url'] or row['source']}")
    return 0


def _verify(name: str | None, record: bool) -> int:
    names = [name] if name else [n for n in w.CHECKPOINTS if w.checkpoint_path(n).is_file()]
    if name and not w.checkpoint_path(name).is_file():
        raise w.WeightsError(w.missing_message(name))
    if not names:
        print(f"no checkpoints in {w.weights_dir()}")
        return 0
    failed = []
    for n in names:
        row = w.verify(n, record=record)
        verdict = {True: "ok", False: "MISMATCH", None: "unverified"}[row["ok"]]
        print(f"{n:<20} {verdict:<10} {row['sha256']} ({row['origin']})")
        if row["ok"] is False:
            failed.append(n)
    if failed:
        raise w.WeightsError(
            f"checksum mismatch for {', '.join(failed)}: delete the file(s) and download again"
        )
    return 0


def run(args: argparse.Namespace) -> int:
    """Execute a parsed ``weights`` command; returns the exit status."""
    action = args.weights_command
    if action == "list":
        return _list()
    if action == "download":
        return _download(checkpoint_names(args.names), force=args.force)
    return _verify(args.name, args.record)


def _download(names: list[str], *, force: bool) -> int:
    """Download each checkpoint, going on past failures; then say what is still missing
    and where to put it. Raises when any requested checkpoint is not in the cache."""
    missing = []
    for name in names:
        try:
            path = w.download(name, force=force)
        except w.WeightsError as exc:  # its message says where the file belongs
            missing.append(f"{name}: {exc}")
            by_hand = w.download_url(name) is None
            print(f"{name:<20} {'by hand' if by_hand else 'FAILED':<10} "
                  f"-> {w.checkpoint_path(name)}")
            continue
        print(f"{name:<20} ok         {path} (sha256 {w.file_sha256(path)})")
    if missing:
        raise w.WeightsError(f"{len(missing)} of {len(names)} checkpoint(s) not in the "
                             "cache:\n" + "\n".join(missing))
    return 0
