"""NiiVue 3-D views that work in the static site, from ``file://`` and in a live kernel.

:func:`niivue_viewer` writes one self-contained HTML fragment: a WebGL2 canvas drawn by
NiiVue (three orthogonal planes plus a 3-D volume rendering), a method menu choosing which
warped moving image is shown, an image menu flicking between it and the fixed image, a
map menu choosing a colour map laid over it (the Jacobian determinant, the error in
mm...) with its colour bar, and the map's opacity slider. Every volume travels inside the
fragment as a base64-encoded gzipped uint8 NIfTI, downsampled until the fragment fits a
byte budget, so the page needs no other file and no server.

The NiiVue bundle itself (``book/_static/niivue/niivue.umd.js``, @niivue/niivue
:data:`NIIVUE_VERSION`, BSD-2-Clause, about 2.3 MB) is either already on the page (the
book's Sphinx extension adds it to the pages holding a view: ``bundle="page"``) or
embedded in the fragment (``bundle="inline"``, for a notebook outside the book). Without
it the fragment says so instead of drawing.

In a live kernel :func:`show_niivue` prefers an ipyniivue widget (``live`` extra) and
falls back to the HTML fragment with the bundle inline.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from breastlib.intensity import normalise_intensity

if TYPE_CHECKING:  # pragma: no cover
    from breastlib.displacement import Displacement
    from breastlib.volume import Volume

__all__ = [
    "DEFAULT_MAX_BYTES",
    "NIIVUE_BUNDLE",
    "NIIVUE_VERSION",
    "NiivueVolumes",
    "bundle_path",
    "decode_nifti",
    "encode_nifti",
    "niivue_viewer",
    "niivue_volumes",
    "registration_views",
    "show_niivue",
    "show_registration_niivue",
]

#: The vendored @niivue/niivue release (``book/_static/niivue/README.md``).
NIIVUE_VERSION = "0.69.0"
#: The bundle's path under the book's static folder (``_static/`` in the built site).
NIIVUE_BUNDLE = "niivue/niivue.umd.js"
#: Default byte budget of one view (the volumes, base64, plus its HTML and script).
DEFAULT_MAX_BYTES = 4_500_000
#: Downsampling factors tried in turn until a view fits its budget.
_FACTORS = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)
#: Downsampling leaves at least this many voxels along each axis.
_MIN_VOXELS = 32
_VIEW_ID = re.compile(r"[^A-Za-z0-9_-]")


def bundle_path() -> Path | None:
    """The vendored ``niivue.umd.js`` of a source checkout (``book/_static/niivue/``), or
    ``None`` when breastlib is installed without the book beside it."""
    path = Path(__file__).resolve().parents[2] / "book" / "_static" / NIIVUE_BUNDLE
    return path if path.is_file() else None


def encode_nifti(
    array: np.ndarray,
    affine: np.ndarray,
    *,
    value_range: tuple[float, float] | None = None,
) -> str:
    """A volume as a base64 string of a gzipped uint8 NIfTI-1 file.

    Parameters
    ----------
    array
        ``(X, Y, Z)`` values in canonical RAS+ order.
    affine
        ``(4, 4)`` voxel index -> RAS millimetre affine.
    value_range
        A map's ``(low, high)``, mapped linearly onto the bytes 1..255 (clipped); NaN
        voxels become 0, below the range, which NiiVue draws transparent (mask a map
        with NaN outside the region it describes). The header's ``scl_slope`` and
        ``scl_inter`` map the bytes back to the map's units, ``cal_min``/``cal_max`` hold
        the range. ``None``: an image, normalised robustly (0.5 and 99.5 percentiles) to
        0..1 onto the bytes 0..255.

    Returns
    -------
    str
        Base64 (ASCII) of the ``.nii.gz`` bytes; deterministic (gzip time stamp 0).
    """
    import nibabel as nib

    data = np.asarray(array, dtype=np.float32)
    if data.ndim != 3:
        raise ValueError(f"expected an (X, Y, Z) array, got shape {data.shape}")
    if value_range is None:
        low, high = 0.0, 1.0
        data = normalise_intensity(np.nan_to_num(data))
        codes = np.rint(data * 255).astype(np.uint8)
        slope, inter = 1 / 255, 0.0
    else:
        # A map: 1..255 span the range, 0 marks "no value" (NaN), which NiiVue draws
        # transparent as it lies below cal_min.
        low, high = (float(v) for v in value_range)
        if not high > low:
            raise ValueError(f"value_range must rise, got {value_range}")
        scaled = np.clip((data - low) / (high - low), 0.0, 1.0)
        codes = np.where(np.isnan(data), 0, 1 + np.rint(np.nan_to_num(scaled) * 254))
        codes = codes.astype(np.uint8)
        slope = (high - low) / 254
        inter = low - slope
    image = nib.Nifti1Image(codes, np.asarray(affine, dtype=np.float64))
    header = image.header
    header.set_slope_inter(slope, inter)
    header["cal_min"], header["cal_max"] = low, high
    header.set_xyzt_units("mm")
    raw = image.to_bytes()
    return base64.b64encode(gzip.compress(raw, compresslevel=9, mtime=0)).decode("ascii")


def decode_nifti(text: str) -> Any:
    """The nibabel image of an :func:`encode_nifti` string (for tests and checks)."""
    import nibabel as nib

    return nib.Nifti1Image.from_bytes(gzip.decompress(base64.b64decode(text)))


def _downsample(array: np.ndarray, factor: float) -> np.ndarray:
    """``(X, Y, Z)`` resampled to about ``shape / factor`` voxels, corners kept."""
    shape = _shape_after(array.shape, factor)
    if shape == tuple(array.shape):
        return np.asarray(array, dtype=np.float32)
    from scipy.ndimage import zoom

    zooms = [m / n for m, n in zip(shape, array.shape, strict=True)]
    return zoom(np.asarray(array, dtype=np.float32), zooms, order=1, grid_mode=False,
                mode="nearest")


def _shape_after(shape: tuple[int, ...], factor: float) -> tuple[int, int, int]:
    """``shape / factor``, but an axis keeps at least :data:`_MIN_VOXELS` voxels (a thin
    stack of slices keeps its slices while the planes shrink)."""
    return tuple(max(min(n, _MIN_VOXELS), round(n / factor))  # type: ignore[return-value]
                 for n in shape)


def _affine_after(affine: np.ndarray, shape: tuple[int, ...],
                  new_shape: tuple[int, ...]) -> np.ndarray:
    """The affine of a grid resampled from ``shape`` to ``new_shape``, first and last
    voxel centres kept (``scipy.ndimage.zoom(grid_mode=False)``)."""
    steps = [(n - 1) / (m - 1) for n, m in zip(shape, new_shape, strict=True)]
    return np.asarray(affine, dtype=np.float64) @ np.diag([*steps, 1.0])


@dataclass
class NiivueVolumes:
    """The encoded volumes of one view (what :func:`niivue_viewer` puts in the page).

    Attributes
    ----------
    fixed
        Base64 ``.nii.gz`` of the fixed image.
    warped
        Method -> base64 ``.nii.gz`` of its warped image.
    overlays
        Map name -> method -> base64 ``.nii.gz`` of that method's map.
    ranges
        Map name -> ``(low, high)`` in the map's units (what its colour bar spans).
    colormaps
        Map name -> NiiVue colour map name.
    shape
        ``(X, Y, Z)`` voxels of the encoded volumes.
    factor
        Downsampling factor applied (1 = full resolution).
    affine
        ``(4, 4)`` voxel -> RAS mm affine of the encoded volumes.
    """

    fixed: str
    warped: dict[str, str]
    overlays: dict[str, dict[str, str]] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    colormaps: dict[str, str] = field(default_factory=dict)
    shape: tuple[int, int, int] = (0, 0, 0)
    factor: float = 1.0
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))

    @property
    def n_bytes(self) -> int:
        """Characters (= bytes) of base64 held, all volumes together."""
        return len(self.fixed) + sum(map(len, self.warped.values())) + sum(
            len(text) for maps in self.overlays.values() for text in maps.values())


def _grid_affine(spacing: Any, affine: np.ndarray | None) -> np.ndarray:
    if affine is not None:
        matrix = np.asarray(affine, dtype=np.float64)
        if matrix.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got {matrix.shape}")
        return matrix
    if spacing is None:
        raise ValueError("give the voxel spacing (mm) or the affine")
    steps = np.asarray(spacing, dtype=np.float64).reshape(-1)
    if steps.shape != (3,) or not np.all(steps > 0):
        raise ValueError(f"spacing must be 3 positive millimetre values, got {spacing}")
    return np.diag([*steps, 1.0])


def niivue_volumes(
    fixed: np.ndarray,
    warped_by_method: Mapping[str, np.ndarray],
    *,
    spacing: np.ndarray | tuple[float, float, float] | None = None,
    affine: np.ndarray | None = None,
    overlays: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    overlay_ranges: Mapping[str, tuple[float, float]] | None = None,
    overlay_colormaps: Mapping[str, str] | None = None,
    factor: float = 1.0,
) -> NiivueVolumes:
    """Encode the volumes of one view at one downsampling factor.

    Parameters
    ----------
    fixed
        ``(X, Y, Z)`` fixed image, canonical RAS+.
    warped_by_method
        Method -> ``(X, Y, Z)`` warped moving image on the fixed grid (a method may be
        ``"not registered"`` for the moving image resampled without registration).
    spacing
        ``(3,)`` voxel size in mm (the affine is then ``diag(spacing)``).
    affine
        ``(4, 4)`` voxel -> RAS mm affine of the fixed grid (wins over ``spacing``).
    overlays
        Map name (``"Jacobian determinant"``, ``"error (mm)"``...) -> method -> its
        ``(X, Y, Z)`` map; a method missing from a map shows none.
    overlay_ranges
        Map name -> ``(low, high)`` its colour bar spans, in its units. Default: 0 to the
        99th percentile of the map over every method.
    overlay_colormaps
        Map name -> NiiVue colour map (``"warm"``, ``"blue2red"``, ``"hot"``...); default
        ``"blue2red"`` for names containing "jacobian", ``"warm"`` otherwise.
    factor
        Downsampling factor (1 keeps every voxel).
    """
    fixed = np.asarray(fixed)
    if fixed.ndim != 3:
        raise ValueError(f"fixed must be (X, Y, Z), got shape {fixed.shape}")
    if not warped_by_method:
        raise ValueError("no warped volume to show")
    grid = _grid_affine(spacing, affine)
    maps = {name: dict(by_method) for name, by_method in (overlays or {}).items()}
    for name, array in [*warped_by_method.items(),
                        *((f"{m} / {k}", a) for m, v in maps.items() for k, a in v.items())]:
        if np.shape(array) != fixed.shape:
            raise ValueError(f"{name}: shape {np.shape(array)} differs from the fixed "
                             f"image's {fixed.shape}")
    unknown = {k for v in maps.values() for k in v} - set(warped_by_method)
    if unknown:
        raise ValueError(f"maps given for methods not in the menu: {sorted(unknown)}")
    ranges: dict[str, tuple[float, float]] = {}
    for name, by_method in maps.items():
        given = (overlay_ranges or {}).get(name)
        if given is None:
            values = np.concatenate([np.asarray(a, dtype=np.float32).ravel()
                                     for a in by_method.values()]) if by_method else [1.0]
            high = float(np.nanpercentile(values, 99)) or 1.0
            given = (0.0, high)
        ranges[name] = (float(given[0]), float(given[1]))
    colormaps = {name: (overlay_colormaps or {}).get(
        name, "blue2red" if "jacobian" in name.lower() else "warm") for name in maps}
    shape = _shape_after(fixed.shape, factor)
    small = _affine_after(grid, fixed.shape, shape)

    def encode(array: np.ndarray, value_range: tuple[float, float] | None = None) -> str:
        return encode_nifti(_downsample(array, factor), small, value_range=value_range)

    return NiivueVolumes(
        fixed=encode(fixed),
        warped={str(m): encode(a) for m, a in warped_by_method.items()},
        overlays={name: {str(m): encode(a, ranges[name]) for m, a in by_method.items()}
                  for name, by_method in maps.items()},
        ranges=ranges, colormaps=colormaps, shape=shape, factor=factor, affine=small)


def niivue_viewer(
    fixed: np.ndarray,
    warped_by_method: Mapping[str, np.ndarray],
    *,
    spacing: np.ndarray | tuple[float, float, float] | None = None,
    affine: np.ndarray | None = None,
    overlays: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    overlay_ranges: Mapping[str, tuple[float, float]] | None = None,
    overlay_colormaps: Mapping[str, str] | None = None,
    title: str = "",
    view_id: str | None = None,
    bundle: Literal["page", "inline"] = "page",
    max_bytes: int = DEFAULT_MAX_BYTES,
    height_px: int = 620,
) -> str:
    """A self-contained HTML fragment showing the volumes in NiiVue.

    The canvas holds the axial, coronal and sagittal planes through the cross-hair and a
    3-D rendering (drag to rotate; click a plane to move the cross-hair), in radiological
    convention (patient's right on the viewer's left). Above it: the method menu (which
    warped volume), the map menu (which colour map, or none), the image menu (the warped
    moving image or the fixed one: flick between them to see what moved) and the map's
    opacity slider; the map's colour bar is drawn beneath the planes. The map lies over
    the image as a translucent layer; values outside the map's region (NaN) are clear.

    Parameters
    ----------
    fixed, warped_by_method, spacing, affine, overlays, overlay_ranges, overlay_colormaps
        As for :func:`niivue_volumes`: ``(X, Y, Z)`` arrays on one grid, voxel size in mm.
    title
        A caption above the controls.
    view_id
        The ``id`` of the fragment's outer ``div``, unique on its page; ``None``:
        ``breastlib-niivue-`` and a digest of the content (deterministic).
    bundle
        ``"page"``: the page loads ``_static/niivue/niivue.umd.js`` itself (the book's
        Sphinx extension adds it to every page holding a view); ``"inline"``: embed the
        vendored bundle (about 2.3 MB more) so the fragment stands alone.
    max_bytes
        Budget of the fragment without the bundle: the volumes are downsampled (factor
        1, 1.25, 1.5, 2...) until it fits.
    height_px
        Height of the canvas in CSS pixels.

    Returns
    -------
    str
        ``<div class="breastlib-niivue" id=view_id>...</div>``.

    Raises
    ------
    ValueError
        Shapes differ, or even the coarsest volumes exceed ``max_bytes``.
    FileNotFoundError
        ``bundle="inline"`` without the vendored bundle (see :func:`bundle_path`).
    """
    if bundle not in ("page", "inline"):
        raise ValueError(f"bundle must be 'page' or 'inline', got {bundle!r}")
    if view_id is not None:
        view_id = _VIEW_ID.sub("-", view_id) or "breastlib-niivue"
    fragment = ""
    for factor in _FACTORS:
        volumes = niivue_volumes(
            fixed, warped_by_method, spacing=spacing, affine=affine, overlays=overlays,
            overlay_ranges=overlay_ranges, overlay_colormaps=overlay_colormaps,
            factor=factor)
        fragment = _fragment(volumes, title=title, view_id=view_id, height_px=height_px)
        if len(fragment.encode()) <= max_bytes:
            break
    else:
        raise ValueError(f"the view needs {len(fragment.encode())} bytes even downsampled "
                         f"{_FACTORS[-1]:g} times, over the {max_bytes}-byte budget")
    if bundle == "inline":
        path = bundle_path()
        if path is None:
            raise FileNotFoundError("the vendored NiiVue bundle (book/_static/niivue) is not "
                                    "beside this breastlib; use bundle='page'")
        code = path.read_text(encoding="utf-8").replace("</script", "<\\/script")
        fragment = fragment.replace(
            "<!--niivue-bundle-->",
            f"<script>if (!window.niivue) {{\n{code}\n}}</script>", 1)
    return fragment


_STYLE = """\
.breastlib-niivue {margin: 1em 0; font-size: 0.9em}
.breastlib-niivue .nv-controls {display: flex; flex-wrap: wrap; gap: 0.4em 1.2em;
  align-items: center; margin-bottom: 0.4em}
.breastlib-niivue .nv-canvas-box {width: 100%; background: #000}
.breastlib-niivue canvas {width: 100%; height: 100%; display: block}
.breastlib-niivue .nv-note {color: #a00}
"""

_SCRIPT = r"""
(function () {
  var root = document.getElementById(%(id)s);
  var data = JSON.parse(root.querySelector("script.nv-data").textContent);
  var status = root.querySelector(".nv-status");
  var say = function (text) { status.textContent = text; };
  if (!window.niivue || !window.niivue.Niivue) {
    say("This 3-D view needs NiiVue (_static/niivue/niivue.umd.js), which this page did " +
        "not load; the slice browsers above show the same volumes.");
    status.className = "nv-status nv-note";
    return;
  }
  var NV = window.niivue;
  var method = root.querySelector("select.nv-method");
  var map = root.querySelector("select.nv-map");
  var shownImage = root.querySelector("select.nv-image");
  var mapOpacity = root.querySelector("input.nv-map-opacity");
  var nv = new NV.Niivue({
    backColor: [0, 0, 0, 1], isColorbar: true, isRadiologicalConvention: true,
    show3Dcrosshair: true, isOrientCube: false, crosshairWidth: 1,
    multiplanarShowRender: NV.SHOW_RENDER.ALWAYS,
    multiplanarLayout: NV.MULTIPLANAR_TYPE.GRID, logLevel: "error"
  });
  var images = {};  // key -> Promise<NVImage>, decoded once
  function image(key, base64, options) {
    if (!images[key]) {
      options.base64 = base64; options.name = key + ".nii.gz";
      images[key] = NV.NVImage.loadFromBase64(options);
    }
    return images[key];
  }
  var shown = 0;
  async function show() {
    var ticket = ++shown;
    var m = method.value, name = map.value;
    var gray = {colormap: "gray", opacity: 1, cal_min: 0, cal_max: 1,
                colorbarVisible: false};
    var wanted = [shownImage.value === "fixed" ? image("fixed", data.fixed, gray)
                  : image("warped:" + m, data.warped[m], gray)];
    var maps = data.overlays[name] || {};
    if (maps[m]) {
      var range = data.ranges[name];
      wanted.push(image("map:" + name + ":" + m, maps[m], {
        colormap: data.colormaps[name], opacity: +mapOpacity.value,
        cal_min: range[0], cal_max: range[1], colorbarVisible: true}));
    }
    var volumes = await Promise.all(wanted);
    if (ticket !== shown) { return; }
    if (volumes[1]) { volumes[1].opacity = +mapOpacity.value; }
    nv.volumes.slice().forEach(function (v) {
      if (volumes.indexOf(v) < 0) { nv.removeVolume(v); }
    });
    volumes.forEach(function (v, i) {
      if (nv.volumes.indexOf(v) < 0) { nv.addVolume(v); }
      nv.setVolume(v, i);
    });
    nv.updateGLVolume();
    root.dataset.shown = m + "|" + shownImage.value + "|" + name;
    say((name !== "none" && !maps[m]) ? ("no " + name + " for " + m) : "");
  }
  function opacity() {
    if (nv.volumes[1]) { nv.setOpacity(1, +mapOpacity.value); }
  }
  nv.attachToCanvas(root.querySelector("canvas")).then(function () {
    nv.setSliceType(NV.SLICE_TYPE.MULTIPLANAR);
    return show();
  }).then(function () { root.dataset.ready = "1"; }).catch(function (error) {
    say("NiiVue could not draw this view: " + error);
    status.className = "nv-status nv-note";
    console.warn(error);
  });
  method.addEventListener("change", show);
  map.addEventListener("change", show);
  shownImage.addEventListener("change", show);
  mapOpacity.addEventListener("input", opacity);
})();
"""


def _fragment(volumes: NiivueVolumes, *, title: str, view_id: str | None,
              height_px: int) -> str:
    def option(value: str) -> str:
        text = html.escape(value)
        return f'<option value="{text}">{text}</option>'

    methods = "".join(option(m) for m in volumes.warped)
    maps = "".join(option(m) for m in [*volumes.overlays, "none"])
    payload = json.dumps({
        "fixed": volumes.fixed, "warped": volumes.warped, "overlays": volumes.overlays,
        "ranges": volumes.ranges, "colormaps": volumes.colormaps,
    }, separators=(",", ":")).replace("</", "<\\/")
    if view_id is None:
        digest = hashlib.sha1((title + payload).encode(), usedforsecurity=False)
        view_id = f"breastlib-niivue-{digest.hexdigest()[:12]}"
    spacing = np.linalg.norm(volumes.affine[:3, :3], axis=0)
    grid = (f"{' x '.join(map(str, volumes.shape))} voxels of "
            f"{' x '.join(f'{s:.2g}' for s in spacing)} mm")
    caption = f"<p class=\"nv-title\"><b>{html.escape(title)}</b></p>" if title else ""
    script = _SCRIPT % {"id": json.dumps(view_id)}
    return (
        f'<div class="breastlib-niivue" id="{view_id}" data-niivue="{NIIVUE_VERSION}">'
        f"<style>{_STYLE}</style>{caption}"
        '<div class="nv-controls">'
        f'<label>method <select class="nv-method">{methods}</select></label>'
        f'<label>map <select class="nv-map">{maps}</select></label>'
        '<label>image <select class="nv-image"><option value="warped">warped moving'
        '</option><option value="fixed">fixed</option></select></label>'
        '<label>map opacity <input class="nv-map-opacity" type="range" min="0" max="1" '
        'step="0.05" value="0.5"></label></div>'
        f'<div class="nv-canvas-box" style="height:{int(height_px)}px"><canvas></canvas></div>'
        f'<p class="nv-status"></p><p class="nv-grid">3-D view (NiiVue {NIIVUE_VERSION}): '
        f"{grid}; drag in the 3-D panel to rotate, click a plane to move the cross-hair; "
        "patient's right on the viewer's left.</p>"
        f'<script type="application/json" class="nv-data">{payload}</script>'
        f"<!--niivue-bundle--><script>{script}</script></div>"
    )


def _in_live_kernel() -> bool:
    import sys

    from breastlib.viz.live import in_static_build

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and hasattr(shell, "kernel") and not in_static_build()


def _ipyniivue_widget(fixed: np.ndarray, warped_by_method: Mapping[str, np.ndarray],
                      options: dict[str, Any]) -> Any:
    """The same view as an ipyniivue widget with ipywidgets controls (live kernels)."""
    import ipyniivue
    import ipywidgets as widgets
    from ipyniivue import MultiplanarType, ShowRender, SliceType

    volumes = niivue_volumes(fixed, warped_by_method, **options)
    viewer = ipyniivue.NiiVue(
        height=620, slice_type=SliceType.MULTIPLANAR, is_colorbar=True,
        multiplanar_show_render=ShowRender.ALWAYS, multiplanar_layout=MultiplanarType.GRID,
        is_radiological_convention=True)
    method = widgets.Dropdown(options=list(volumes.warped), description="method")
    shown_image = widgets.ToggleButtons(options=["warped moving", "fixed"],
                                        description="image")
    chosen_map = widgets.Dropdown(options=[*volumes.overlays, "none"], description="map")
    opacity = widgets.FloatSlider(value=0.5, min=0, max=1, step=0.05,
                                  description="map opacity")

    def load(_change: Any = None) -> None:
        m, name = method.value, chosen_map.value
        image = volumes.fixed if shown_image.value == "fixed" else volumes.warped[m]
        chosen = [{"data": base64.b64decode(image), "name": "image.nii.gz",
                   "colormap": "gray", "cal_min": 0.0, "cal_max": 1.0,
                   "colorbar_visible": False}]
        if m in volumes.overlays.get(name, {}):
            low, high = volumes.ranges[name]
            chosen.append({"data": base64.b64decode(volumes.overlays[name][m]),
                           "name": "map.nii.gz", "colormap": volumes.colormaps[name],
                           "opacity": opacity.value, "cal_min": low, "cal_max": high})
        viewer.load_volumes(chosen)

    def set_opacity(_change: Any = None) -> None:
        if len(viewer.volumes) > 1:
            viewer.volumes[1].opacity = opacity.value

    for control in (method, shown_image, chosen_map):
        control.observe(load, names="value")
    opacity.observe(set_opacity, names="value")
    load()
    return widgets.VBox([widgets.HBox([method, chosen_map]),
                         widgets.HBox([shown_image, opacity]), viewer])


def show_niivue(
    fixed: np.ndarray,
    warped_by_method: Mapping[str, np.ndarray],
    *,
    widget: bool | None = None,
    **options: Any,
) -> Any:
    """Display a NiiVue view in a notebook: the book's static page, or a live kernel.

    In the book's static build the HTML fragment of :func:`niivue_viewer` is shown (the
    page loads the vendored bundle). In a live kernel an ipyniivue widget is shown when
    ipyniivue is installed (``pip install 'breastlib[live]'``); otherwise the same HTML
    fragment with the bundle inline (a source checkout), or, without the bundle, a note.

    Parameters
    ----------
    fixed, warped_by_method
        As for :func:`niivue_viewer`.
    widget
        ``True``/``False`` forces the ipyniivue widget / the HTML; ``None`` chooses.
    **options
        Keywords of :func:`niivue_viewer` (``spacing``, ``overlays``, ``title``...);
        the widget uses those of :func:`niivue_volumes`.

    Returns
    -------
    Any
        The ipyniivue widget box, or ``None`` when HTML was displayed.
    """
    from IPython.display import HTML, display

    if widget is None:
        widget = False
        if _in_live_kernel():
            try:
                import ipyniivue  # noqa: F401
            except ImportError:
                widget = False
            else:
                widget = True
    if widget:
        keys = ("spacing", "affine", "overlays", "overlay_ranges", "overlay_colormaps")
        box = _ipyniivue_widget(fixed, warped_by_method,
                                {k: options[k] for k in keys if k in options})
        display(box)
        return box
    from breastlib.viz.live import in_static_build

    if "bundle" not in options:
        options["bundle"] = "page" if in_static_build() or bundle_path() is None else "inline"
    display(HTML(niivue_viewer(fixed, warped_by_method, **options)))
    return None


def registration_views(
    fixed: Volume,
    moving: Volume,
    fields: Mapping[str, Displacement],
    *,
    truth: Displacement | None = None,
    mask: np.ndarray | None = None,
    before: str | None = "not registered",
) -> dict[str, Any]:
    """Keywords of :func:`niivue_viewer` / :func:`show_niivue` for fields on one pair.

    Parameters
    ----------
    fixed, moving
        The pair (the moving image may lie on its own grid).
    fields
        Method -> its estimated fixed -> moving :class:`~breastlib.displacement.Displacement`
        on the fixed grid; the menu lists them in this order.
    truth
        The true fixed -> moving field, when known: adds the map ``"error (mm)"``,
        ``|u(x) - u_true(x)|`` per method, its colour bar from 0 to the 99th percentile of
        the error before registration.
    mask
        ``(X, Y, Z)`` bool, where the maps are drawn (for example the breast); ``None``
        draws them everywhere.
    before
        Menu entry for the moving image resampled without registration (first in the
        menu), or ``None`` to leave it out.

    Returns
    -------
    dict
        ``fixed`` (``(X, Y, Z)`` array), ``warped_by_method``, ``affine`` (``(4, 4)``, RAS
        mm), ``overlays`` (``"Jacobian determinant"``, 0 to 2, and ``"error (mm)"`` with
        ``truth``), ``overlay_ranges`` and ``overlay_colormaps``.
    """
    from breastlib.displacement import Displacement

    everything = dict(fields)
    if before is not None:
        everything = {before: Displacement.identity(fixed.grid), **everything}
    inside = None if mask is None else np.asarray(mask, dtype=bool)
    if inside is not None and inside.shape != fixed.shape:
        raise ValueError(f"mask shape {inside.shape} differs from the fixed {fixed.shape}")

    def masked(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float32)
        return values if inside is None else np.where(inside, values, np.nan)

    warped = {name: field.warp(moving, device="cpu").array
              for name, field in everything.items()}
    overlays = {"Jacobian determinant": {name: masked(field.jacobian_determinant())
                                         for name, field in everything.items()}}
    ranges = {"Jacobian determinant": (0.0, 2.0)}
    if truth is not None:
        true_mm = truth.millimetres()
        errors = {name: masked(np.linalg.norm(field.millimetres() - true_mm, axis=0))
                  for name, field in everything.items()}
        start = masked(truth.magnitude_mm())
        high = float(np.nanpercentile(start, 99)) if np.isfinite(start).any() else 1.0
        overlays = {"error (mm)": errors, **overlays}
        ranges["error (mm)"] = (0.0, max(high, 1.0))
    return {"fixed": fixed.array, "warped_by_method": warped, "affine": fixed.affine,
            "overlays": overlays, "overlay_ranges": ranges,
            "overlay_colormaps": {"Jacobian determinant": "blue2red", "error (mm)": "warm"}}


def show_registration_niivue(
    fixed: Volume,
    moving: Volume,
    fields: Mapping[str, Displacement],
    *,
    truth: Displacement | None = None,
    mask: np.ndarray | None = None,
    before: str | None = "not registered",
    **options: Any,
) -> Any:
    """:func:`show_niivue` of :func:`registration_views` (same parameters; ``options``
    such as ``title`` go to :func:`show_niivue`)."""
    views = registration_views(fixed, moving, fields, truth=truth, mask=mask, before=before)
    return show_niivue(views.pop("fixed"), views.pop("warped_by_method"), **views, **options)
