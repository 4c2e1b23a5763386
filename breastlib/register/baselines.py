"""Classical baselines: identity, affine, ANTs SyN and elastix B-spline.

Every baseline returns the same :class:`~breastlib.register.pipeline.RegistrationResult`
as :func:`~breastlib.register.register_pair`, with a fixed -> moving pull-back
:class:`~breastlib.displacement.Displacement` on the fixed canonical grid
(``warped(x) = moving(x + u(x))``, ``u`` in fixed voxels).

ANTs and elastix work in LPS millimetres on their own image objects. Both are given
images built from the canonical volumes with the exact LPS origin, spacing and direction
(:func:`_lps_geometry`), so their index ``(i, j, k)`` is our canonical index and their
physical point is ``LPS_FLIP`` of our RAS point. Their outputs are dense displacement
fields sampled at the fixed image's voxel centres (ANTs: the forward transforms composed
into one field by ``antsApplyTransforms``; elastix: ``transformix`` deformation field),
so the conversion is exact: flip the first two components (LPS -> RAS) and express the
millimetre vectors in fixed voxels (:meth:`Displacement.from_millimetres`). No field is
resampled on the way.

The optional packages (``antspyx``, ``itk-elastix``) are imported only when their method
runs; a missing one raises :class:`~breastlib.errors.MissingDependencyError` naming the
``baselines`` extra.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from breastlib.displacement import Displacement
from breastlib.errors import BreastlibError, InputError, require
from breastlib.grid import LPS_FLIP
from breastlib.intensity import normalise_intensity
from breastlib.register.initial import affine_matrix
from breastlib.register.pipeline import RegistrationResult
from breastlib.volume import Volume

BASELINES = ("identity", "affine", "ants", "elastix")

#: ANTs SyN defaults: three levels (shrink 4, 2, 1; smoothing 2, 1, 0 voxels), Mattes MI
#: with 32 bins on every voxel. About 10-20 s for a 128 x 128 x 64 pair on two cores.
ANTS_DEFAULTS: dict[str, Any] = {
    "reg_iterations": (40, 20, 10),
    "syn_metric": "mattes",
    "syn_sampling": 32,
    "grad_step": 0.2,
    "flow_sigma": 3.0,
    "total_sigma": 0.0,
}

#: elastix defaults: the stock ``affine`` and ``bspline`` parameter maps (adaptive
#: stochastic gradient descent, Mattes MI on random samples, bending-energy penalty),
#: shortened to three resolutions and a 16 mm final control-point grid.
ELASTIX_DEFAULTS: dict[str, Any] = {
    "resolutions": 3,
    "affine_iterations": 200,
    "bspline_iterations": 200,
    "spatial_samples": 2048,
    "grid_spacing_mm": 16.0,
    "bending_weight": 1.0,
    "threads": None,
}

_PARAMS = {"identity": {}, "affine": {}, "ants": ANTS_DEFAULTS, "elastix": ELASTIX_DEFAULTS}


def register_baseline(
    fixed: Volume, moving: Volume, *, method: str, seed: int = 0, **params: Any
) -> RegistrationResult:
    """Register ``moving`` to ``fixed`` with a classical baseline.

    Parameters
    ----------
    fixed, moving
        Volumes on any grids that overlap in world space; raw intensities of any range
        (ANTs and elastix see robust-normalised copies, see
        :func:`~breastlib.intensity.normalise_intensity`).
    method
        One of :data:`BASELINES`:

        - ``"identity"``: the zero field (no registration).
        - ``"affine"``: SimpleITK affine, Mattes MI, three resolutions
          (:func:`~breastlib.register.initial.affine_matrix`).
        - ``"ants"``: ANTs SyN (``antspyx``), initialised with the ``"affine"`` result;
          parameters and defaults in :data:`ANTS_DEFAULTS`.
        - ``"elastix"``: elastix affine then B-spline parameter maps (``itk-elastix``),
          the affine stage initialised by the centres of gravity; parameters and defaults
          in :data:`ELASTIX_DEFAULTS`.
    seed
        Seeds the random metric sampling of every method (SimpleITK, ANTs
        ``--random-seed``, elastix ``RandomSeed``).
    **params
        Overrides of the method's defaults, e.g. ``reg_iterations=(20, 10, 0)`` for ANTs
        or ``bspline_iterations=100`` for elastix. Unknown names raise
        :class:`~breastlib.errors.InputError`.

    Returns
    -------
    RegistrationResult
        ``displacement`` (fixed -> moving pull-back, initial alignment included),
        ``profile="baseline"``, ``params`` (every parameter used, seed and
        initialisation included), ``device="cpu"``, ``seconds`` with keys ``init``,
        ``features`` (always 0), ``optimisation`` and ``total``, and ``initial_matrix``
        (4x4 fixed -> moving RAS world matrix of the affine stage; identity for
        ``"identity"``).

    Raises
    ------
    InputError
        Unknown method or parameter, or images that do not overlap.
    MissingDependencyError
        ``antspyx`` or ``itk-elastix`` missing (``pip install 'breastlib[baselines]'``).
    """
    if method not in BASELINES:
        raise InputError(f"unknown baseline '{method}': choose from {', '.join(BASELINES)}")
    defaults = _PARAMS[method]
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        allowed = ", ".join(defaults) or "none"
        raise InputError(
            f"unknown parameter(s) for baseline '{method}': {', '.join(unknown)} "
            f"(allowed: {allowed})"
        )
    options = {**defaults, **params}
    if method != "identity" and not fixed.grid.overlaps(moving.grid):
        raise InputError("fixed and moving images do not overlap in world space")
    # Import the optional package first, so a missing one fails before any work.
    module = {"ants": ("ants", "baselines"), "elastix": ("itk", "baselines")}.get(method)
    if module is not None:
        require(*module)

    start = time.perf_counter()
    if method == "identity":
        matrix = np.eye(4)
        displacement = Displacement.identity(fixed.grid)
        t_init = t_opt = time.perf_counter()
        used: dict[str, Any] = {"init": "none"}
    elif method == "affine":
        matrix = _affine(fixed, moving, seed)
        t_init = time.perf_counter()
        displacement = Displacement.from_world_affine(matrix, fixed.grid)
        t_opt = time.perf_counter()
        used = {"init": "com", "metric": "mattes", "levels": 3}
    elif method == "ants":
        matrix = _affine(fixed, moving, seed)
        t_init = time.perf_counter()
        displacement = _ants_syn(fixed, moving, matrix, seed=seed, **options)
        t_opt = time.perf_counter()
        used = {"init": "affine", **options}
    else:
        t_init = time.perf_counter()
        displacement, matrix = _elastix_bspline(fixed, moving, seed=seed, **options)
        t_opt = time.perf_counter()
        used = {"init": "elastix-affine", **options}
    end = time.perf_counter()
    used = {k: list(v) if isinstance(v, tuple) else v for k, v in used.items()}
    return RegistrationResult(
        displacement=displacement,
        method=method,
        profile="baseline",
        params={"method": method, **used, "seed": seed},
        device="cpu",
        seconds={
            "init": t_init - start,
            "features": 0.0,
            "optimisation": t_opt - t_init,
            "total": end - start,
        },
        initial_matrix=np.asarray(matrix, dtype=np.float64),
    )


def _affine(fixed: Volume, moving: Volume, seed: int) -> np.ndarray:
    """SimpleITK affine (fixed -> moving, RAS), reproducible for a given seed."""
    if seed < 0:
        raise InputError(f"seed must be >= 0, got {seed}")
    return affine_matrix(fixed, moving, seed=int(seed))


# -- geometry shared by ANTs and ITK ---------------------------------------------------
def _lps_geometry(volume: Volume) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(origin, spacing, direction)`` of the canonical grid in LPS, as ITK holds them.

    ``direction`` is the ``(3, 3)`` matrix whose columns are the unit index axes, so
    ``point_lps = origin + direction @ (spacing * index)``.
    """
    lps = LPS_FLIP @ volume.affine
    spacing = volume.spacing
    return lps[:3, 3].copy(), spacing, np.ascontiguousarray(lps[:3, :3] / spacing)


def _field_from_lps(field_lps: np.ndarray, fixed: Volume) -> Displacement:
    """``(X, Y, Z, 3)`` LPS-mm vectors at the fixed canonical voxels -> Displacement."""
    if field_lps.shape != (*fixed.shape, 3):
        raise BreastlibError(
            f"registration returned a field of shape {field_lps.shape}, expected "
            f"{(*fixed.shape, 3)} on the fixed grid"
        )
    ras = np.einsum("ij,...j->i...", LPS_FLIP[:3, :3], field_lps.astype(np.float64))
    return Displacement.from_millimetres(ras, fixed.grid)


def _check_geometry(origin, spacing, direction, fixed: Volume, what: str) -> None:
    """Raise unless ``origin/spacing/direction`` (LPS) describe the fixed grid."""
    want_origin, want_spacing, want_direction = _lps_geometry(fixed)
    ok = (
        np.allclose(np.asarray(origin, float), want_origin, atol=1e-3)
        and np.allclose(np.asarray(spacing, float), want_spacing, atol=1e-4)
        and np.allclose(np.asarray(direction, float), want_direction, atol=1e-4)
    )
    if not ok:
        raise BreastlibError(f"{what} is not on the fixed image's grid; cannot convert it")


# -- ANTs ---------------------------------------------------------------------------
def _to_ants(volume: Volume, ants: Any) -> Any:
    origin, spacing, direction = _lps_geometry(volume)
    array = normalise_intensity(volume.array)
    return ants.from_numpy(
        np.ascontiguousarray(array, dtype=np.float32),
        origin=tuple(float(v) for v in origin),
        spacing=tuple(float(v) for v in spacing),
        direction=direction,
    )


def _ants_syn(
    fixed: Volume,
    moving: Volume,
    matrix: np.ndarray,
    *,
    seed: int,
    reg_iterations: tuple[int, ...],
    syn_metric: str,
    syn_sampling: int,
    grad_step: float,
    flow_sigma: float,
    total_sigma: float,
) -> Displacement:
    """SyN from ``matrix`` (RAS fixed -> moving) on; the composed forward field."""
    ants = require("ants", "baselines")
    fixed_image = _to_ants(fixed, ants)
    moving_image = _to_ants(moving, ants)
    lps = LPS_FLIP @ np.asarray(matrix, dtype=np.float64) @ LPS_FLIP
    initial = ants.create_ants_transform(
        transform_type="AffineTransform", precision="double", dimension=3,
        matrix=lps[:3, :3], translation=lps[:3, 3],
    )
    previous_seed = ants.config._random_seed
    with tempfile.TemporaryDirectory(prefix="breastlib-ants-") as tmp:
        init_path = str(Path(tmp) / "initial.mat")
        ants.write_transform(initial, init_path)
        # antspyx >= 0.5 takes the seed from its config, not from a keyword.
        ants.config._random_seed = int(seed)
        try:
            result = ants.registration(
                fixed_image, moving_image, type_of_transform="SyNOnly",
                initial_transform=[init_path], outprefix=str(Path(tmp) / "syn_"),
                reg_iterations=tuple(int(i) for i in reg_iterations), syn_metric=syn_metric,
                syn_sampling=int(syn_sampling), grad_step=float(grad_step),
                flow_sigma=float(flow_sigma), total_sigma=float(total_sigma),
            )
        finally:
            ants.config._random_seed = previous_seed
        return _ants_field(ants, fixed_image, moving_image, result["fwdtransforms"], fixed)


def _ants_field(
    ants: Any, fixed_image: Any, moving_image: Any, transforms: list[str], fixed: Volume
) -> Displacement:
    """Compose ANTs forward transforms (as ``antsApplyTransforms -t``) into our field.

    For ``[warp, affine]`` the composed field is ``x -> affine(x + warp(x)) - x`` in LPS
    mm at the voxel centres of ``fixed_image`` (which must be built from ``fixed``).
    """
    with tempfile.TemporaryDirectory(prefix="breastlib-ants-compose-") as tmp:
        composed = ants.apply_transforms(
            fixed_image, moving_image, transformlist=list(transforms),
            compose=str(Path(tmp) / "composed_"),
        )
        field_image = ants.image_read(composed)
        _check_geometry(field_image.origin, field_image.spacing, field_image.direction,
                        fixed, "the ANTs displacement field")
        field_lps = np.array(field_image.numpy(), dtype=np.float64)  # (X, Y, Z, 3)
    return _field_from_lps(field_lps, fixed)


# -- elastix ------------------------------------------------------------------------
def _to_itk(volume: Volume, itk: Any) -> Any:
    origin, spacing, direction = _lps_geometry(volume)
    array = normalise_intensity(volume.array)
    image = itk.image_from_array(np.ascontiguousarray(array.transpose(2, 1, 0), np.float32))
    image.SetOrigin([float(v) for v in origin])
    image.SetSpacing([float(v) for v in spacing])
    image.SetDirection(itk.matrix_from_array(direction))
    return image


def _elastix_maps(
    itk: Any, *, seed: int, resolutions: int, affine_iterations: int,
    bspline_iterations: int, spatial_samples: int, grid_spacing_mm: float,
    bending_weight: float,
) -> Any:
    parameters = itk.ParameterObject.New()
    common = {
        "NumberOfResolutions": [str(int(resolutions))],
        "NumberOfSpatialSamples": [str(int(spatial_samples))],
        "RandomSeed": [str(int(seed))],
        "WriteResultImage": ["false"],
    }
    affine = parameters.GetDefaultParameterMap("affine")
    for key, value in common.items():
        affine[key] = value
    affine["MaximumNumberOfIterations"] = [str(int(affine_iterations))]
    affine["AutomaticTransformInitialization"] = ["true"]
    affine["AutomaticTransformInitializationMethod"] = ["CenterOfGravity"]
    bspline = parameters.GetDefaultParameterMap("bspline")
    for key, value in common.items():
        bspline[key] = value
    bspline["MaximumNumberOfIterations"] = [str(int(bspline_iterations))]
    bspline["FinalGridSpacingInPhysicalUnits"] = [str(float(grid_spacing_mm))]
    bspline["GridSpacingSchedule"] = [str(2.0**level) for level in range(resolutions)][::-1]
    bspline["Metric1Weight"] = [str(float(bending_weight))]
    parameters.AddParameterMap(affine)
    parameters.AddParameterMap(bspline)
    return parameters


def _elastix_affine_to_ras(parameter_map: Any) -> np.ndarray:
    """RAS 4x4 of an elastix ``AffineTransform`` map: ``p -> A (p - c) + c + t`` in LPS."""
    values = np.array([float(v) for v in parameter_map["TransformParameters"]])
    centre = np.array([float(v) for v in parameter_map["CenterOfRotationPoint"]])
    matrix = values[:9].reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = matrix
    lps[:3, 3] = values[9:12] + centre - matrix @ centre
    return LPS_FLIP @ lps @ LPS_FLIP


def _elastix_bspline(
    fixed: Volume, moving: Volume, *, seed: int, threads: int | None, **options: Any
) -> tuple[Displacement, np.ndarray]:
    """elastix affine + B-spline; the transformix deformation field and the affine."""
    itk = require("itk", "baselines")
    fixed_image = _to_itk(fixed, itk)
    moving_image = _to_itk(moving, itk)
    parameters = _elastix_maps(itk, seed=seed, **options)
    kwargs: dict[str, Any] = {"parameter_object": parameters, "log_to_console": False}
    if threads is not None:
        kwargs["number_of_threads"] = int(threads)
    _, transform = itk.elastix_registration_method(fixed_image, moving_image, **kwargs)
    matrix = _elastix_affine_to_ras(transform.GetParameterMap(0))
    return _elastix_field(itk, moving_image, transform, fixed), matrix


def _elastix_field(itk: Any, moving_image: Any, transform: Any, fixed: Volume) -> Displacement:
    """The transformix deformation field of ``transform`` (all its maps) as our field.

    transformix samples the whole transform (e.g. affine then B-spline) at the voxel
    centres of the fixed image named in the maps (Size/Origin/Spacing/Direction), in LPS
    mm, pull-back (fixed -> moving); ``moving_image`` only sets the pixel type.
    transformix also writes ``deformationField.nii`` into its output directory, the
    current directory unless told otherwise (concurrent workers would share one file, a
    user's file of that name would be overwritten), so it writes into a private
    temporary directory; the field is read from memory.
    """
    with tempfile.TemporaryDirectory(prefix="breastlib-transformix-") as tmp:
        field_image = itk.transformix_deformation_field(
            moving_image, transform, output_directory=tmp
        )
    _check_geometry(
        np.array(field_image.GetOrigin()), np.array(field_image.GetSpacing()),
        itk.array_from_matrix(field_image.GetDirection()), fixed,
        "the elastix deformation field",
    )
    field_lps = itk.array_from_image(field_image).transpose(2, 1, 0, 3)  # (X, Y, Z, 3)
    return _field_from_lps(field_lps, fixed)
