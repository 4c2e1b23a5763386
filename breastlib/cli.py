"""The ``breastlib`` command line.

Every user error ends in one line ``breastlib: error: <file>: <what>`` and exit code 2,
with no traceback and no partial output.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import BreastlibError, InputError

EXIT_USAGE = 2

# Subcommands contributed by other modules, each exposing add_parser(subparsers).
_PLUGIN_MODULES = ("breastlib.phantom.cli", "breastlib.encoders.weights_cli", "breastlib.study_cli")


def _add_volume_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--volume-index", type=int, default=None,
                        help="volume to take from 4-D input (e.g. a DCE phase)")
    parser.add_argument("--nan", choices=("error", "zero"), default="error",
                        help="NaN/Inf voxels: refuse (default) or replace by 0")


def _add_register(subparsers: argparse._SubParsersAction) -> None:
    from .register.initial import INIT_METHODS
    from .register.profiles import PROFILES

    p = subparsers.add_parser(
        "register", help="register MOVING to FIXED and write field, warped image, QC, summary",
        description="Register MOVING onto FIXED. Writes displacement.nii.gz (LPS mm, intent "
        "1007, fixed grid), warped.nii.gz, qc.png and summary.json into --out.",
    )
    p.add_argument("fixed", type=Path, help="fixed image (NIfTI file or DICOM folder)")
    p.add_argument("moving", type=Path, help="moving image (NIfTI file or DICOM folder)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--method", default="mind",
                   help="mind (default), an encoder (sam, dinov2, ...) or a classical "
                   "baseline (identity, affine, ants, elastix)")
    p.add_argument("--profile", default="fast", choices=sorted(PROFILES))
    p.add_argument("--init", default="com", choices=INIT_METHODS)
    p.add_argument("--device", default="auto")
    p.add_argument("--weights", default="random",
                   help="encoder weights: pretrained, random, or a checkpoint path")
    p.add_argument("--input-size", type=int, default=None, help="encoder input size (px)")
    p.add_argument("--slice-step", type=int, default=None, help="encode every k-th slice")
    p.add_argument("--pca-dims", type=int, default=None, help="PCA components kept")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fixed-labels", type=Path, help="label map on the fixed image's grid")
    p.add_argument("--moving-labels", type=Path, help="label map on the moving image's grid")
    p.add_argument("--label-names", type=Path, help='labels.json: {"name": value, ...}')
    p.add_argument("--fixed-points", type=Path, help="landmarks CSV (x,y,z RAS mm)")
    p.add_argument("--moving-points", type=Path, help="corresponding landmarks CSV")
    _add_volume_options(p)
    p.set_defaults(func=_run_register)


def _add_apply(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "apply", help="apply a saved displacement to an image, a label map or landmarks",
        description="Apply DISPLACEMENT (written by `breastlib register`) to another series "
        "(linear), a label map (nearest) or landmarks (fixed -> moving; --inverse for "
        "moving -> fixed).",
    )
    p.add_argument("displacement", type=Path)
    p.add_argument("--fixed", type=Path, required=True, help="the fixed image of the field")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--image", type=Path, help="image on the moving side to warp")
    group.add_argument("--labels", type=Path, help="label map on the moving side to warp")
    group.add_argument("--points", type=Path, help="landmarks CSV to map")
    p.add_argument("--inverse", action="store_true",
                   help="points only: map moving-image points to the fixed image")
    p.add_argument("--out", type=Path, required=True, help="output file")
    p.add_argument("--device", default="auto")
    _add_volume_options(p)
    p.set_defaults(func=_run_apply)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="breastlib",
        description="Zero-shot breast MRI registration with vision foundation models.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"breastlib {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_register(subparsers)
    _add_apply(subparsers)
    for name in _PLUGIN_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name and not name.startswith(f"{exc.name}."):
                raise
            continue
        module.add_parser(subparsers)
    return parser


def _run_register(args: argparse.Namespace) -> int:
    from .commands import run_register

    run_register(args)
    return 0


def _run_apply(args: argparse.Namespace) -> int:
    from .commands import run_apply

    run_apply(args)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``breastlib`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BreastlibError as exc:
        print(f"breastlib: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("breastlib: interrupted; no partial output was written", file=sys.stderr)
        return 130


def load_label_names(path: Path | None) -> dict[str, int] | None:
    """Read a flat ``{name: value}`` JSON file (``labels.json``)."""
    if path is None:
        return None
    if not path.exists():
        raise InputError("file not found", path)
    try:
        names = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc})", path) from exc
    if not isinstance(names, dict) or not all(
        isinstance(k, str) and isinstance(v, int) for k, v in names.items()
    ):
        raise InputError('expected a flat JSON object {"name": integer value}', path)
    return names


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
