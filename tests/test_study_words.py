"""Sentences computed from study rows (breastlib.booktools.study_words)."""

from __future__ import annotations

import pandas as pd

from breastlib.booktools.study_words import method_on_pairs_words, task_difficulty_words


def difficulty(**changes: dict[str, float | str]) -> pd.DataFrame:
    """A task_difficulty table of four tasks, each inside the calibrated band."""
    base = {"pairs": 10, "identity TRE (mm)": 10.0, "identity dense (mm)": 9.0,
            "best classical": "elastix", "its TRE (mm)": 3.0, "its dense (mm)": 2.5,
            "its TRE interior": 2.0, "its TRE skin": 3.5, "its TRE chest wall": 3.0,
            "its TRE lesion": float("nan")}
    rows = {task: base | changes.get(task, {})
            for task in ("longitudinal", "sequence", "modality", "lesion")}
    return pd.DataFrame.from_dict(rows, orient="index")


def test_difficulty_words_read_the_table():
    table = difficulty(sequence={"best classical": "ants", "its dense (mm)": 3.2,
                                 "its TRE interior": 3.40, "its TRE skin": 3.45,
                                 "its TRE chest wall": 3.5},
                       modality={"its dense (mm)": 2.24},
                       lesion={"identity TRE (mm)": 11.0, "its TRE lesion": 1.5})
    text = task_difficulty_words(table)
    assert text.startswith("Over the 4 tasks, no registration leaves the landmarks "
                           "10.0-11.0 mm from their partners")
    assert "brings them to 3.0 mm (dense error 2.2-3.2 mm)" in text  # 2.24 prints as 2.2
    assert "inside the band the phantom was calibrated for" in text
    assert "on all 4 tasks" in text
    assert ("on the longitudinal pairs elastix misses most at the skin (3.5 mm) and least "
            "inside the breast (2.0 mm)") in text
    assert "on the sequence pairs ANTs misses about alike everywhere (3.4-3.5 mm)" in text
    assert "on the lesion pairs elastix misses most at the skin (3.5 mm) and least at the " \
           "lesion (1.5 mm)" in text
    assert ("ends 2.2 mm from the true deformation on the modality pairs (elastix) against "
            "3.2 mm on the sequence pairs (ANTs), 1.0 mm less") in text


def test_difficulty_words_name_the_tasks_outside_the_band():
    text = task_difficulty_words(difficulty(longitudinal={"its TRE (mm)": 1.5},
                                            sequence={"identity TRE (mm)": 6.0}))
    assert "on 2 of 4 tasks; outside it on longitudinal, sequence" in text
    assert task_difficulty_words(pd.DataFrame()) == ""


def rows_of(method: str, values: list[dict], identity: list[dict]) -> pd.DataFrame:
    out = []
    for i, (own, before) in enumerate(zip(values, identity, strict=True)):
        out.append(dict(pair_id=f"p{i}", method="identity", status="ok", verdict="ok",
                        jac_nonpos_pct=0.0) | before)
        out.append(dict(pair_id=f"p{i}", method=method, status="ok") | own)
    return pd.DataFrame(out)


def test_method_words_name_flags_and_the_metrics_that_got_worse():
    identity = [dict(dice_breast=0.80, hd95_breast_mm=6.0, field_error_mean_mm=9.0),
                dict(dice_breast=0.75, hd95_breast_mm=8.0, field_error_mean_mm=10.0),
                dict(dice_breast=0.90, hd95_breast_mm=5.0, field_error_mean_mm=5.0)]
    own = [dict(verdict="ok", jac_nonpos_pct=0.1, dice_breast=0.95, hd95_breast_mm=3.0,
                field_error_mean_mm=2.0),
           dict(verdict="worse_than_identity", jac_nonpos_pct=0.0, dice_breast=0.93,
                hd95_breast_mm=40.0, field_error_mean_mm=2.5),
           dict(verdict="folded", jac_nonpos_pct=2.5, dice_breast=0.60, hd95_breast_mm=9.0,
                field_error_mean_mm=7.0)]
    text = method_on_pairs_words(rows_of("mind", own, identity), "mind")
    assert text == (
        "On these 3 pairs MIND folds at most 2.50 % of the body, 1 folded beyond the limit "
        "and 1 worse than no registration (breast HD95 on 1) of its 3 rows; it brings breast "
        "Dice to 0.60-0.95 (no registration: 0.75-0.90) and ends 2.0-7.0 mm from the true "
        "deformation on average (no registration: 5.0-10.0 mm).")


def test_method_words_count_rows_of_several_seeds_and_clean_rows():
    identity = [dict(dice_breast=0.8, hd95_breast_mm=6.0, field_error_mean_mm=9.0)]
    own = [dict(verdict="ok", jac_nonpos_pct=0.0, dice_breast=0.9, hd95_breast_mm=4.0,
                field_error_mean_mm=3.0)]
    rows = rows_of("sam", own, identity)
    rows = pd.concat([rows, rows[rows["method"] == "sam"]], ignore_index=True)
    text = method_on_pairs_words(rows, "sam")
    assert text.startswith("Over its 2 rows on this pair (seeds and weights together)")
    assert "none of its 2 rows is flagged" in text
    assert method_on_pairs_words(rows, "mind") == ""


def test_guard_words_count_stages_flags_and_what_is_delivered():
    from breastlib.booktools.study_words import guard_words

    def row(method, weights, stage, verdict, own, guarded):
        return dict(method=method, weights=weights, stage_kept=stage, verdict=verdict,
                    field_error_mean_mm=own, guarded_field_error_mean_mm=guarded, status="ok")

    rows = pd.DataFrame([
        row("identity", None, "", "ok", 9.0, 9.0),  # no ConvexAdam: not counted
        row("mind", None, "adam", "ok", 2.0, 2.0),
        row("mind", None, "convex", "worse_than_identity", 3.0, 4.0),
        row("sam", "random", "initial", "folded", 50.0, 5.0),
        row("dinov2", "random", "identity", "ok", 8.0, 9.0),
        row("sam", "random", "adam", "failed", 1.0, 1.0) | {"status": "failed"},
    ])
    text = guard_words(rows)
    assert text.startswith("The stage guard in this build's 4 rows that ran ConvexAdam: ")
    assert ("for MIND (2 rows) it kept Adam's field on 1, the convex step on 1; their own "
            "fields fold beyond the limit on 0 and end worse than no registration on 1, and "
            "average 2.5 mm from the true deformation, where what breastlib delivers with "
            "the guard averages 3.0 mm") in text
    assert ("for the random-weight encoders (2 rows) it kept the initial alignment on 1, no "
            "registration on 1; their own fields fold beyond the limit on 1") in text
    assert "average 29.0 mm" in text and "averages 7.0 mm" in text
    assert "pretrained" not in text
    assert guard_words(rows[rows["method"] == "identity"]) == ""
    # Rows written before the guarded columns existed: the own field is what was delivered.
    older = guard_words(rows.drop(columns="guarded_field_error_mean_mm"))
    assert "average 2.5 mm from the true deformation, where what breastlib delivers with " \
           "the guard averages 2.5 mm" in older
