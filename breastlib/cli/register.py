"""``breastlib register``: register MOVING onto FIXED and write the outputs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from breastlib.cli._options import add_profile_option, add_volume_options
from breastlib.register.initial import INIT_METHODS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``register`` subcommand."""
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
    add_profile_option(p)
    p.add_argument("--init", default=None, choices=INIT_METHODS,
                   help="initial alignment (default: the profile's: affine; none for paper and "
                        "convexadam)")
    p.add_argument("--device", default="auto")
    p.add_argument("--weights", default="random",
                   help="encoder weights: pretrained, random, or a checkpoint path")
    p.add_argument("--input-size", type=int, default=None, help="encoder input size (px)")
    p.add_argument("--slice-step", type=int, default=None, help="encode every k-th slice")
    p.add_argument("--pca-dims", type=int, default=None, help="PCA components kept")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   type=parse_param,
                   help="override one profile parameter, e.g. --param iterations=300 "
                   "(repeatable; VALUE is read as JSON, else as text)")
    p.add_argument("--fixed-labels", type=Path, help="label map on the fixed image's grid")
    p.add_argument("--moving-labels", type=Path, help="label map on the moving image's grid")
    p.add_argument("--label-names", type=Path, help='labels.json: {"name": value, ...}')
    p.add_argument("--fixed-points", type=Path, help="landmarks CSV (x,y,z RAS mm)")
    p.add_argument("--moving-points", type=Path, help="corresponding landmarks CSV")
    p.add_argument("--true-displacement", type=Path,
                   help="the true fixed -> moving field (displacement NIfTI on the fixed "
                   "grid, e.g. a phantom's gt_displacement.nii.gz): adds the dense field "
                   "error to summary.json")
    p.add_argument("--no-qc", dest="qc", action="store_false",
                   help="do not draw qc.png (saves about 0.1 s per pair)")
    add_volume_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Parse nothing further: hand the options to :func:`breastlib.workflows.register_files`."""
    from breastlib.workflows import register_files

    register_files(
        args.fixed, args.moving, args.out, method=args.method, profile=args.profile,
        init=args.init, device=args.device, weights=args.weights, input_size=args.input_size,
        slice_step=args.slice_step, pca_dims=args.pca_dims, seed=args.seed,
        fixed_labels=args.fixed_labels, moving_labels=args.moving_labels,
        label_names=args.label_names, fixed_points=args.fixed_points,
        moving_points=args.moving_points, true_displacement=args.true_displacement,
        volume_index=args.volume_index, nan=args.nan, overrides=dict(args.param), qc=args.qc,
    )
    return 0


def parse_param(text: str) -> tuple[str, Any]:
    """``"NAME=VALUE"`` -> ``(NAME, VALUE)``, VALUE read as JSON (``300``, ``true``,
    ``[0.1, 1]``) and otherwise kept as text (``released``)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name.strip(), json.loads(value)
    except json.JSONDecodeError:
        return name.strip(), value
