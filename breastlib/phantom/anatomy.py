"""Procedural prone breast anatomy: one label map per subject, drawable at any points.

The body is an implicit model in RAS millimetres (prone, feet first, breasts hanging
anteriorly towards +y). :meth:`Anatomy.render` evaluates it at arbitrary ``(N, 3)``
points, so a moving image is drawn *exactly* at the deformed positions of its voxels
(no resampling blur), and partial volume comes from drawing a finer grid and averaging.

Modelled (after the FDA VICTRE breastPhantom's tissue list): skin, subcutaneous and
intramammary fat, fibroglandular tissue (FGT) as strands converging on the nipple plus
lobules around a branching duct tree, Cooper's ligaments as thin septa in the fat,
nipple, subcutaneous vessels, optional irregular or spiculated lesion with a rim,
pectoralis major, chest-wall muscle, ribs with costal cartilage, sternum, lungs, heart
with blood pool, aorta, internal mammary vessels, mediastinum, liver dome.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from breastlib.phantom.breast import Breast
from breastlib.phantom.labels import LABELS
from breastlib.phantom.noise import NoiseLattice, sample_grid
from breastlib.phantom.shapes import (
    ellipse_sdf,
    ellipsoid_sdf,
    rotation_matrix,
    smooth_min,
    smoothstep,
)
from breastlib.phantom.trees import Raster, Tree, duct_tree, rasterise, vessel_tree

#: FGT volume fraction of the breast per BI-RADS density class.
DENSITY_FRACTION: dict[str, float] = {"a": 0.08, "b": 0.2, "c": 0.38, "d": 0.58}

# The world box the textures cover (mm): generous enough for any deformed sample point.
_BOX_LO = np.array([-240.0, -260.0, -140.0])
_BOX_HI = np.array([240.0, 230.0, 140.0])
_CHUNK = 1_000_000


@dataclass(frozen=True)
class Lesion:
    """An irregular or spiculated mass (RAS mm).

    Parameters
    ----------
    centre
        ``(3,)`` position.
    radius
        Mean radius (mm); the diameter ranges from a few mm to 3 cm.
    irregularity
        Relative amplitude of the radius modulation (0 = sphere).
    spicules
        ``(K, 4)`` unit direction and length (mm) of each spicule.
    """

    centre: np.ndarray
    radius: float
    irregularity: float
    spicules: np.ndarray


@dataclass(frozen=True)
class Subject:
    """Every anatomical parameter of one synthetic subject (drawn by :func:`draw_subject`).

    Lengths in mm; ``density`` is the BI-RADS class ``"a"`` to ``"d"``.
    """

    seed: int
    torso_a: float
    torso_b: float
    subcut: float
    pec_thickness: float
    breasts: tuple[Breast, Breast]
    density: str
    breast_subcut: float
    heart_centre: np.ndarray
    heart_radii: np.ndarray
    heart_angle: float
    rib_pitch: float
    rib_phase: float
    lesion: Lesion | None


@dataclass(frozen=True)
class VisitState:
    """Tissue changes between visits.

    Parameters
    ----------
    fgt_scale
        Multiplies the FGT volume fraction (``< 1``: involution).
    lesion_scale
        Multiplies the lesion radius (``< 1``: shrinkage under treatment).
    """

    fgt_scale: float = 1.0
    lesion_scale: float = 1.0


def draw_subject(seed: int, *, lesion: bool = False, density: str | None = None) -> Subject:
    """Draw a subject's anatomy parameters from ``seed`` (deterministic).

    Parameters
    ----------
    seed
        Any non-negative integer.
    lesion
        Add one irregular/spiculated mass in a randomly chosen breast.
    density
        Force the BI-RADS density class; drawn from the seed when ``None``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 101]))
    torso_a = rng.uniform(148.0, 162.0)
    torso_b = rng.uniform(108.0, 122.0)
    subcut = rng.uniform(9.0, 18.0)
    size = rng.uniform(0.75, 1.2)  # overall breast size
    breasts = []
    for side in (1, -1):
        asym = rng.uniform(0.92, 1.08)
        xb = side * rng.uniform(88.0, 102.0)
        yc = -torso_b
        y_surface = yc + torso_b * np.sqrt(max(1.0 - (xb / torso_a) ** 2, 0.05))
        tilt = np.deg2rad(rng.uniform(4.0, 14.0))
        droop = np.deg2rad(rng.uniform(-6.0, 2.0))
        axis = np.array([side * np.sin(tilt), np.cos(tilt), np.sin(droop)])
        axis /= np.linalg.norm(axis)
        e2 = np.array([0.0, 0.0, 1.0]) - axis[2] * axis
        e2 /= np.linalg.norm(e2)
        e1 = np.cross(e2, axis) * side
        base = np.array([xb, y_surface - subcut - 4.0, rng.uniform(-8.0, 8.0)])
        breasts.append(Breast(
            side=side, base=base, axis=axis, e1=e1, e2=e2,
            depth=float(rng.uniform(95.0, 140.0) * size * asym),
            r1=float(rng.uniform(62.0, 78.0) * np.sqrt(size * asym)),
            r2=float(rng.uniform(56.0, 70.0) * np.sqrt(size * asym)),
            gamma=float(rng.uniform(1.9, 2.8)),
            nipple_length=float(rng.uniform(5.0, 9.0)),
            nipple_radius=float(rng.uniform(4.0, 6.0)),
        ))
    dens = density or str(rng.choice(["a", "b", "c", "d"], p=[0.1, 0.4, 0.4, 0.1]))
    if dens not in DENSITY_FRACTION:
        raise ValueError(f"density must be one of a, b, c, d, not {dens!r}")
    heart_centre = np.array([rng.uniform(-28.0, -15.0), -torso_b + rng.uniform(25.0, 40.0),
                             rng.uniform(-45.0, -25.0)])
    heart_radii = np.array([rng.uniform(58, 70), rng.uniform(44, 52), rng.uniform(50, 60)])
    les = None
    if lesion:
        br = breasts[int(rng.integers(0, 2))]
        t = rng.uniform(0.3, 0.65)
        rn = rng.uniform(0.0, 0.45) * float(br.rho(np.array(t)))
        phi = rng.uniform(0, 2 * np.pi)
        centre = br.to_world(np.array([t]), np.array([rn * np.cos(phi)]),
                             np.array([rn * np.sin(phi)]))[0]
        radius = rng.uniform(3.0, 15.0)
        n_spic = int(rng.integers(5, 12)) if rng.random() < 0.5 else 0
        dirs = rng.standard_normal((n_spic, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True) + 1e-12
        lengths = rng.uniform(0.6, 1.4, n_spic) * radius + 3.0
        les = Lesion(centre=centre, radius=float(radius),
                     irregularity=float(rng.uniform(0.12, 0.3)),
                     spicules=np.column_stack([dirs, lengths]).reshape(-1, 4))
    return Subject(
        seed=int(seed), torso_a=float(torso_a), torso_b=float(torso_b), subcut=float(subcut),
        pec_thickness=float(rng.uniform(9.0, 15.0)), breasts=(breasts[0], breasts[1]),
        density=dens, breast_subcut=float(rng.uniform(4.0, 9.0)),
        heart_centre=heart_centre, heart_radii=heart_radii,
        heart_angle=float(np.deg2rad(rng.uniform(20.0, 40.0))),
        rib_pitch=float(rng.uniform(24.0, 30.0)), rib_phase=float(rng.uniform(0.0, 30.0)),
        lesion=les,
    )


class Anatomy:
    """A subject made drawable: textures, duct/vessel trees and the FGT threshold.

    Parameters
    ----------
    subject
        The parameters from :func:`draw_subject`.
    raster_mm
        Spacing (mm) of the tube rasters of ducts and vessels (finer for ``full``).
    """

    def __init__(self, subject: Subject, *, raster_mm: float = 1.0) -> None:
        self.subject = subject
        rng = np.random.default_rng(np.random.SeedSequence([subject.seed, 202]))
        self.lobule = NoiseLattice.random(rng, _BOX_LO, _BOX_HI, 2.2, channels=2)
        self.coarse = NoiseLattice.random(rng, _BOX_LO, _BOX_HI, 7.0, channels=3)
        self.strand = NoiseLattice.random(rng, np.full(3, -200.0), np.full(3, 200.0), 3.0, 2)
        self.ducts: list[Tree] = []
        self.vessels: list[Tree] = []
        self.rasters: list[Raster] = []
        for br in subject.breasts:
            ducts = duct_tree(br, rng, int(rng.integers(8, 13)))
            vessels = vessel_tree(br, rng, int(rng.integers(3, 6)))
            self.ducts.append(ducts)
            self.vessels.append(vessels)
            pts = np.concatenate([ducts.points, vessels.points])
            lo, hi = pts.min(axis=0) - 6.0, pts.max(axis=0) + 6.0
            self.rasters.append(rasterise([ducts, vessels], lo, hi, raster_mm))
        self._threshold_cache: dict[float, tuple[float, float]] = {}
        self._fgt_thresholds()

    # -- public -------------------------------------------------------------------
    def render(self, points: np.ndarray, state: VisitState | None = None
               ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Draw tissue labels and texture fields at ``(N, 3)`` RAS mm points.

        Returns
        -------
        labels : numpy.ndarray
            ``(N,)`` uint8 tissue values (:data:`~breastlib.phantom.labels.LABELS`).
        aux : dict of numpy.ndarray
            ``(N,)`` float32 fields used by the contrast models: ``tex`` (unit-variance
            tissue texture), ``rim`` (0 lesion core -> 1 lesion rim), ``marrow`` (0 cortical
            bone -> 1 marrow), ``blood`` (1 in the heart's blood pool), ``ligament``
            (partial septum fraction in breast fat), ``depth`` (mm below the skin).
        """
        state = state or VisitState()
        points = np.asarray(points, dtype=np.float32)
        n = points.shape[0]
        labels = np.zeros(n, dtype=np.uint8)
        aux = {k: np.zeros(n, dtype=np.float32)
               for k in ("tex", "rim", "marrow", "blood", "ligament", "depth")}
        for start in range(0, n, _CHUNK):
            sl = slice(start, min(n, start + _CHUNK))
            lab, fields = self._render_chunk(points[sl], state)
            labels[sl] = lab
            for key, value in fields.items():
                aux[key][sl] = value
        return labels, aux

    def landmarks(self) -> tuple[np.ndarray, list[str]]:
        """Distinctive points of the reference anatomy: ``(M, 3)`` mm and their kinds."""
        pts, kinds = [], []
        for br, ducts, vessels in zip(self.subject.breasts, self.ducts, self.vessels,
                                      strict=True):
            pts.append(br.nipple - br.axis * 3.0)
            kinds.append("nipple")
            pts.extend(ducts.branch_points)
            kinds.extend(["fgt_branch"] * len(ducts.branch_points))
            pts.extend(vessels.branch_points)
            kinds.extend(["vessel_bifurcation"] * len(vessels.branch_points))
        s = self.subject
        if s.lesion is not None:
            pts.append(s.lesion.centre)
            kinds.append("lesion_centre")
        # Sternum tip of the chest wall and the heart's apex are rigid-ish references.
        pts.append(np.array([0.0, -s.subcut - 17.0, 0.0]))
        kinds.append("sternum")
        return np.asarray(pts, dtype=np.float64), kinds

    def breast_of(self, points: np.ndarray) -> np.ndarray:
        """Index (0 right, 1 left) of the breast each ``(N, 3)`` point belongs to."""
        return (np.asarray(points)[:, 0] < 0).astype(np.int64)

    # -- internals ----------------------------------------------------------------
    @property
    def subcut(self) -> float:
        """Depth (mm) of the pectoralis under the chest surface (:class:`~breastlib.phantom.
        deformation.Chest`)."""
        return self.subject.subcut

    def torso_sdf(self, p: np.ndarray) -> np.ndarray:
        """Approximate signed distance (mm) of ``(N, 3)`` points to the chest surface."""
        s = self.subject
        scale = 1.0 + 0.04 * p[:, 2] / 80.0
        return ellipse_sdf(p[:, 0], p[:, 1] + s.torso_b, s.torso_a * scale, s.torso_b * scale)

    def _fgt_score(self, p: np.ndarray, br: Breast, raster: Raster, f_mound: np.ndarray,
                   f_torso: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score (FGT where above threshold), duct and vessel proximity at breast points."""
        s = self.subject
        t, a, b = br.local(p)
        rn = np.sqrt(a * a + b * b)
        v = p - br.nipple.astype(np.float32)
        r = np.linalg.norm(v, axis=1, keepdims=True) + 1e-3
        direction = v / r
        # Strands: noise on the sphere around the nipple, stretched along the radius.
        q = direction * 90.0 + np.array([0.31, 0.52, 0.79], dtype=np.float32) * (0.22 * r)
        sn = self.strand.sample(q + 37.0 * br.side)
        # Ridged: near the crossing of two zero sets -> curvilinear strands along the radius.
        strand = 1.6 - 2.2 * np.sqrt(sn[0] ** 2 + sn[1] ** 2)
        lob = self.lobule.sample(p)
        coarse = self.coarse.sample(p)
        tubes = sample_grid(raster.values, raster.lo, raster.spacing, p)
        duct, vessel = tubes[0], tubes[1]
        tex = 0.6 * strand + 0.4 * lob[0] + 0.6 * coarse[0]
        score = tex + 2.2 * np.minimum(duct, 1.0) - 0.9 * rn ** 2 - 0.5 * np.clip(t - 0.85, 0, 1)
        env = smoothstep(-s.breast_subcut, -s.breast_subcut - 6.0, f_mound)
        env *= smoothstep(-s.subcut + 4.0, -s.subcut + 12.0, f_torso)
        score = np.where(env > 0.02, score - 4.0 * (1.0 - env), -10.0)
        return score.astype(np.float32), duct, vessel

    def _fgt_thresholds(self, fgt_scale: float = 1.0) -> tuple[float, float]:
        """Per-breast score thresholds giving the density class's FGT fraction.

        The fraction is measured on 60 000 seeded random points of each breast mound;
        ``fgt_scale`` multiplies it (visit-2 involution). Results are cached.
        """
        key = round(float(fgt_scale), 6)
        if key in self._threshold_cache:
            return self._threshold_cache[key]
        rng = np.random.default_rng(np.random.SeedSequence([self.subject.seed, 303]))
        frac = DENSITY_FRACTION[self.subject.density] * fgt_scale
        out = []
        for br, raster in zip(self.subject.breasts, self.rasters, strict=True):
            t = rng.uniform(0.0, 1.0, 60_000)
            rad = np.sqrt(rng.uniform(0.0, 1.0, t.size)) * br.rho(t)
            phi = rng.uniform(0, 2 * np.pi, t.size)
            p = br.to_world(t, rad * np.cos(phi), rad * np.sin(phi)).astype(np.float32)
            f_mound, _ = br.sdf(p)
            f_torso = self.torso_sdf(p)
            keep = (f_mound < -1.5) & (f_torso > -self.subject.subcut)
            score, _, _ = self._fgt_score(p[keep], br, raster, f_mound[keep], f_torso[keep])
            out.append(float(np.quantile(score, 1.0 - min(frac, 0.999))))
        self._threshold_cache[key] = (out[0], out[1])
        return out[0], out[1]

    def _lesion(self, p: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
        les = self.subject.lesion
        d_vec = p - les.centre.astype(np.float32)
        d = np.linalg.norm(d_vec, axis=1) + 1e-6
        direction = d_vec / d[:, None]
        radius = les.radius * scale
        wobble = self.coarse.sample(direction * 30.0 + 11.0)
        r_surf = radius * (1.0 + les.irregularity * (0.8 * wobble[1] + 0.5 * wobble[2]))
        inside = d < r_surf
        for row in les.spicules:
            cos = direction @ row[:3].astype(np.float32)
            perp = d * np.sqrt(np.maximum(1.0 - cos * cos, 0.0))
            length = radius + row[3] * scale
            width = 1.4 * np.clip(1.0 - d / length, 0.0, 1.0) * min(1.0, radius / 5.0)
            inside |= (cos > 0) & (d < length) & (perp < width)
        rim = smoothstep(0.45, 0.9, d / np.maximum(r_surf, 1e-3))
        return inside, rim

    def _render_chunk(self, p: np.ndarray, state: VisitState
                      ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        s = self.subject
        L = LABELS
        n = p.shape[0]
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        f_torso = self.torso_sdf(p)
        mounds, nipples = zip(*(br.sdf(p) for br in s.breasts), strict=True)
        f_body = smooth_min(f_torso, np.minimum(mounds[0], mounds[1]), 14.0)
        f_body = smooth_min(f_body, np.minimum(nipples[0], nipples[1]), 2.5)
        depth = -f_body
        labels = np.zeros(n, dtype=np.uint8)
        tex = np.zeros(n, dtype=np.float32)
        rim = np.zeros(n, dtype=np.float32)
        marrow = np.zeros(n, dtype=np.float32)
        blood = np.zeros(n, dtype=np.float32)
        ligament = np.zeros(n, dtype=np.float32)
        inside = f_body < 0
        labels[inside] = L["fat"]

        # -- chest: layers below the torso surface ----------------------------------
        dt = -f_torso
        yr = y + s.torso_b  # relative to the thorax centre
        ell_sin = np.clip(yr / s.torso_b, -1.0, 1.0)
        sector = smoothstep(0.05, 0.45, ell_sin) * smoothstep(22.0, 60.0, np.abs(x))
        pec = s.pec_thickness * sector * (0.55 + 0.45 * smoothstep(-70.0, 30.0, z))
        back = 10.0 + 14.0 * smoothstep(0.0, -0.8, ell_sin)
        muscle_t = np.maximum(pec, back * (1.0 - sector))
        d0 = s.subcut + muscle_t
        muscle = inside & (dt >= s.subcut) & (dt < d0)
        labels[muscle] = np.where(sector[muscle] > 0.5, L["pectoralis"], L["chest_wall"])
        shell = inside & (dt >= d0) & (dt < d0 + 11.0)
        labels[shell] = L["chest_wall"]
        # Ribs: oblique bands that descend anteriorly; cartilage near the sternum.
        theta_drop = 38.0 * (1.0 + ell_sin) / 2.0
        zz = z + theta_drop - s.rib_phase
        k = np.round(zz / s.rib_pitch)
        dz = zz - k * s.rib_pitch
        dr = dt - (d0 + 5.5)
        rr = np.sqrt((dr / 4.5) ** 2 + (dz / 6.5) ** 2)
        is_rib = shell & (rr < 1.0)
        cartilage = np.abs(x) < 55.0 + 10.0 * np.sin(k * 1.3)
        labels[is_rib & ~cartilage] = L["rib"]
        marrow[is_rib] = smoothstep(0.8, 0.55, rr[is_rib])
        sternum = shell & (np.abs(x) < 15.0 + 2.0 * np.sin(z / 20.0)) & (ell_sin > 0.5)
        labels[sternum] = L["sternum"]
        srr = np.maximum(np.abs(x) / 15.0, np.abs(dr) / 7.0)
        marrow[sternum] = smoothstep(0.85, 0.6, srr[sternum])

        # -- thoracic cavity -------------------------------------------------------
        cavity = inside & (dt >= d0 + 11.0)
        labels[cavity] = L["lung"]
        tex[cavity] = self.coarse.sample(p[cavity])[1]
        med = cavity & (np.abs(x + 6.0) < 5.0 + 19.0 * smoothstep(0.3, 0.9, ell_sin))
        labels[med] = L["mediastinum"]
        dome = (-42.0 - 20.0 * ((x - 45.0) / 110.0) ** 2 - 18.0 * (yr / s.torso_b) ** 2
                - 25.0 * smoothstep(10.0, -40.0, x))
        liver = cavity & (z < dome)
        labels[liver] = L["liver"]
        rot = rotation_matrix(0.0, 0.0, s.heart_angle).astype(np.float32)
        ci = np.flatnonzero(cavity)
        hp = (p[ci] - s.heart_centre.astype(np.float32)) @ rot
        f_heart = ellipsoid_sdf(hp, s.heart_radii.astype(np.float32))
        in_heart = (f_heart < 0) & ~(liver[ci] & (f_heart > -8.0))
        hi = ci[in_heart]
        labels[hi] = L["heart"]
        septum = np.abs(hp[in_heart, 0] + 0.25 * hp[in_heart, 1] - 6.0)
        blood[hi] = smoothstep(-9.0, -13.0, f_heart[in_heart]) * smoothstep(3.0, 5.0, septum)
        # Great vessels: ascending and descending aorta, internal mammary vessels.
        asc = np.hypot(x - 8.0, yr - 0.2 * s.torso_b) < 15.0
        asc &= z > s.heart_centre[2] + 0.6 * s.heart_radii[2]
        desc = np.hypot(x + 28.0, yr + 0.62 * s.torso_b) < 12.0
        imv = (dt >= d0 + 11.0) & (dt < d0 + 15.5) & (np.abs(np.abs(x) - 30.0) < 2.5)
        great = cavity & (asc | desc | imv)
        labels[great] = L["vessel"]
        blood[great] = 1.0
        # Vertebral body in front of the back muscles (bone with fatty marrow).
        r_vert = np.hypot(x, (yr + 0.45 * s.torso_b) / 0.85)
        vert = inside & (r_vert < 19.0)
        labels[vert] = L["spine"]
        marrow[vert] = smoothstep(18.5, 15.0, r_vert[vert])

        # -- breasts ----------------------------------------------------------------
        soft = inside & (dt < s.subcut + 0.5)
        tex[soft] = 0.7 * self.lobule.sample(p[soft])[1]
        for i, (br, raster) in enumerate(zip(s.breasts, self.rasters, strict=True)):
            side = (x * br.side > 0) & soft & (mounds[i] < 2.0)
            if not side.any():
                continue
            q = p[side]
            score, _duct, vessel = self._fgt_score(q, br, raster, mounds[i][side], f_torso[side])
            threshold = self._fgt_thresholds(state.fgt_scale)[i]
            lab = labels[side]
            fgt = score > threshold
            lab[fgt] = L["fgt"]
            tex_side = tex[side]
            tex_side[fgt] = np.clip(score[fgt] - threshold, 0.0, 2.0) - 0.5
            # Cooper's ligaments: zero-level sheets of a smooth noise, in the fat.
            sheet = self.coarse.sample(q * np.float32(1.6))[2]
            lig = np.clip(1.0 - np.abs(sheet) / 0.09, 0.0, 1.0)
            lig *= smoothstep(-2.0, -5.0, mounds[i][side]) * smoothstep(-s.subcut, 0.0,
                                                                      f_torso[side])
            lig[fgt] = 0.0
            ligament[side] = lig
            lab[(lig > 0.55)] = L["ligament"]
            lab[(vessel > 0.5) & ~fgt] = L["vessel"]
            labels[side] = lab
            tex[side] = tex_side
        if s.lesion is not None:
            c = s.lesion.centre.astype(np.float32)
            reach = s.lesion.radius * state.lesion_scale + 3.0
            reach += float(s.lesion.spicules[:, 3].max(initial=0.0)) * state.lesion_scale
            near = inside & (np.linalg.norm(p - c, axis=1) < reach + 2.0)
            if near.any() and state.lesion_scale > 0:
                les, les_rim = self._lesion(p[near], state.lesion_scale)
                idx = np.flatnonzero(near)[les]
                labels[idx] = L["lesion"]
                rim[idx] = les_rim[les]

        # -- skin and nipple last (they cover everything) ------------------------------
        d_nip = np.minimum(np.linalg.norm(p - s.breasts[0].nipple.astype(np.float32), axis=1),
                           np.linalg.norm(p - s.breasts[1].nipple.astype(np.float32), axis=1))
        skin_t = 1.5 + 1.3 * smoothstep(22.0, 12.0, d_nip)  # thicker areola
        skin = inside & (depth < skin_t)
        labels[skin] = L["skin"]
        nipple = inside & (np.minimum(nipples[0], nipples[1]) < 0) & (d_nip < 14.0)
        labels[nipple] = L["nipple"]
        return labels, {"tex": tex, "rim": rim, "marrow": marrow, "blood": blood,
                        "ligament": ligament, "depth": np.maximum(depth, 0.0)}
