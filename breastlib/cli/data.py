"""``breastlib data list | fetch NAME | path NAME [SERIES]``: named public datasets.

Registered by :mod:`breastlib.cli` through :func:`add_parser`; the work is done by
:mod:`breastlib.datasets`, whose :class:`~breastlib.datasets.DatasetError` the command
line prints as one line.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``data`` subcommand on the top-level parser's subparsers."""
    parser = subparsers.add_parser(
        "data",
        help="list, fetch and locate public datasets (real breast MRI)",
        description=(
            "Named public datasets, every file pinned by SHA-256. The cache is "
            "$BREASTLIB_DATA (else the user cache folder); a mirror laid out as NAME/<file> "
            "($BREASTLIB_DATA_MIRROR: a folder or a URL) is tried before the upstream URL. "
            "Each dataset keeps its own licence: see 'breastlib data list'."
        ),
    )
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    sub.add_parser("list", help="show every dataset: size, licence, citation, cache status")
    fetch = sub.add_parser("fetch", help="download (or complete, or repair) a dataset")
    fetch.add_argument("name", metavar="NAME", help="dataset name (see 'breastlib data list')")
    fetch.add_argument("--quiet", action="store_true", help="no progress bar")
    path = sub.add_parser("path", help="print the folder of a fetched dataset or series")
    path.add_argument("name", metavar="NAME", help="dataset name")
    path.add_argument("series", nargs="?", metavar="SERIES",
                      help="print this series folder instead (e.g. s08_pre)")
    parser.set_defaults(func=run)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _list() -> int:
    from breastlib import datasets as d

    mirror = d.mirror_location()
    print(f"data cache: {d.data_dir()}")
    print(f"mirror: {mirror if mirror else 'none (set BREASTLIB_DATA_MIRROR)'}")
    for name in d.dataset_names():
        ds = d.get_dataset(name)
        state = d.check(name=ds, verify=False)
        present = sum(s == "ok" for s in state.values())
        status = ("fetched" if present == len(state) else
                  "missing" if present == 0 else f"partial {present}/{len(state)}")
        print(f"{name:<10} {len(ds.files):>5} files  {_size(ds.size):>9}  "
              f"licence: {ds.license}  [{status}]")
        print(f"{'':<10} {ds.title}")
        for series, text in ds.series.items():
            print(f"{'':<10}   {series}: {text}")
        print(f"{'':<10} source: {ds.source} (commit {ds.commit[:12]})")
        print(f"{'':<10} attribution: {ds.attribution}")
        print(f"{'':<10} cite: {ds.citation}")
    return 0


def _fetch(name: str, quiet: bool) -> int:
    from breastlib import datasets as d

    result = d.fetch(name=name, progress=False if quiet else None)
    if result.up_to_date:
        print(f"{result.name}: up to date ({result.files} files, {_size(result.bytes)}, "
              f"verified) in {result.path}")
        return 0
    repaired = f", {len(result.replaced)} corrupt file(s) replaced" if result.replaced else ""
    print(f"{result.name}: fetched {len(result.fetched)} of {result.files} files "
          f"({result.from_mirror} from the mirror, {result.from_upstream} from upstream"
          f"{repaired}); all verified in {result.path}")
    ds = d.get_dataset(name)
    print(f"licence: {ds.license} (see {', '.join(ds.license_files)}); cite: {ds.citation}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Execute a parsed ``data`` command; returns the exit status."""
    from breastlib import datasets as d

    action = args.data_command
    if action == "list":
        return _list()
    if action == "fetch":
        return _fetch(args.name, args.quiet)
    print(d.dataset_path(name=args.name, series=args.series))
    return 0
