"""The real-exam chapter (book/real-exam.md): one clinical breast MRI exam, no ground truth.

The exam is the public dataset ``uta11`` (:mod:`breastlib.datasets`): a prone bilateral
1.5 T exam with a fat-suppressed DCE series (pre-contrast, post-contrast phases 1 and 5) and
a T2 TSE series on another grid. Nothing of it, nor any image made from it, is committed:
:func:`open_exam` fetches it into the data cache (or reads it from there) on each build.

One module per job:

- :mod:`.loading`: fetching and reading the exam, the working grids of the book's build
  (:func:`exam_build`: 3 mm voxels in the ``small`` build, each series' own in ``full``),
  cropping to the breasts;
- :mod:`.measures`: what the images alone say (similarity, subtraction artefact at the skin
  and edges, folding, the Jacobian in the enhancing region);
- :mod:`.registration`: the methods' settings and MIND's registrations shown in figures;
- :mod:`.known`: the pre-contrast image deformed by the phantom's own deformation regimes,
  scored by the dense error, and its ranking set beside the phantom's;
- :mod:`.tables`: every method of the study on the five :data:`EXPERIMENTS`, and their
  summaries in words;
- :mod:`.cache`: the numbers cache under ``book/data/real-exam/`` (numbers only, never an
  image), keyed by everything the tables depend on;
- :mod:`.figures`: the chapter's figures;
- :mod:`.display`: what the chapter's cells show (a table, its summary, a figure).

Arrays are canonical RAS+ ``(X, Y, Z)`` (see :mod:`breastlib.grid`), displacements fixed ->
moving pull-back fields (:class:`~breastlib.displacement.Displacement`).
"""

from breastlib.booktools.real_exam.cache import (
    CACHE_PATH,
    MEASURES_VERSION,
    TEXT_COLUMNS,
    ExamNumbers,
    cache_key,
    exam_numbers,
    key_id,
    machine_description,
    read_numbers,
    table_from_json,
    table_to_json,
    write_numbers,
)
from breastlib.booktools.real_exam.display import (
    FEATURE_ENCODERS,
    phantom_rankings,
    show_experiment,
    show_features,
    show_known,
    show_rankings,
)
from breastlib.booktools.real_exam.figures import (
    breast_slice,
    feature_figure,
    known_deformation_figure,
    ranking_figure,
    regions_figure,
    subtraction_figure,
    t2_figure,
)
from breastlib.booktools.real_exam.known import (
    CHEST_DEPTH_MM,
    KNOWN_REGIMES,
    KNOWN_SEED,
    KnownDeformation,
    chest_origin,
    known_deformation,
    phantom_errors,
    rank_agreement,
    ranking_table,
    regime_deformation,
    transfer_words,
)
from breastlib.booktools.real_exam.loading import (
    CROP_MARGIN_MM,
    DATASET,
    SERIES,
    WORK_SPACING_MM,
    ExamBuild,
    RealExam,
    crop,
    crop_box,
    downsample,
    exam_build,
    fetch_exam,
    geometry_table,
    load_exam,
    open_exam,
    unavailable_message,
)
from breastlib.booktools.real_exam.measures import (
    EDGE_PERCENTILE,
    EDGE_SIGMA_VOXELS,
    ENHANCEMENT_MADS,
    JACOBIAN_LOW,
    SKIN_BAND_MM,
    DceRegions,
    dce_measures,
    dce_regions,
    edge_band,
    enhancing_region,
    folding_pct,
    jacobian_in_region,
    mind_ssd,
    ncc,
    skin_band,
    subtraction_artefact,
)
from breastlib.booktools.real_exam.registration import (
    WEIGHTS,
    Registration,
    motion_correction,
    register_and_measure,
    registration_options,
    registration_settings,
    run_method,
    show_motion_3d,
    t2_to_dce,
)
from breastlib.booktools.real_exam.tables import (
    EXPERIMENTS,
    METHODS,
    known_regime,
    method_tables,
    summary,
)

__all__ = [
    "CACHE_PATH",
    "CHEST_DEPTH_MM",
    "CROP_MARGIN_MM",
    "DATASET",
    "EDGE_PERCENTILE",
    "EDGE_SIGMA_VOXELS",
    "ENHANCEMENT_MADS",
    "EXPERIMENTS",
    "FEATURE_ENCODERS",
    "JACOBIAN_LOW",
    "KNOWN_REGIMES",
    "KNOWN_SEED",
    "MEASURES_VERSION",
    "METHODS",
    "SERIES",
    "SKIN_BAND_MM",
    "TEXT_COLUMNS",
    "WEIGHTS",
    "WORK_SPACING_MM",
    "DceRegions",
    "ExamBuild",
    "ExamNumbers",
    "KnownDeformation",
    "RealExam",
    "Registration",
    "breast_slice",
    "cache_key",
    "chest_origin",
    "crop",
    "crop_box",
    "dce_measures",
    "dce_regions",
    "downsample",
    "edge_band",
    "enhancing_region",
    "exam_build",
    "exam_numbers",
    "feature_figure",
    "fetch_exam",
    "folding_pct",
    "geometry_table",
    "jacobian_in_region",
    "key_id",
    "known_deformation",
    "known_deformation_figure",
    "known_regime",
    "load_exam",
    "machine_description",
    "method_tables",
    "mind_ssd",
    "motion_correction",
    "ncc",
    "open_exam",
    "phantom_errors",
    "phantom_rankings",
    "rank_agreement",
    "ranking_figure",
    "ranking_table",
    "read_numbers",
    "regime_deformation",
    "regions_figure",
    "register_and_measure",
    "registration_options",
    "registration_settings",
    "run_method",
    "show_experiment",
    "show_features",
    "show_known",
    "show_motion_3d",
    "show_rankings",
    "skin_band",
    "subtraction_artefact",
    "subtraction_figure",
    "summary",
    "t2_figure",
    "t2_to_dce",
    "table_from_json",
    "table_to_json",
    "transfer_words",
    "unavailable_message",
    "write_numbers",
]
