"""The book's answer in words (breastlib.booktools.answer): computed from the rows, so it
says what the statistics say, with their numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from breastlib.booktools.answer import PRETRAINED_COMMAND, answer_in_words, power_in_words
from breastlib.evaluate.statistics import task_tests


def study(subjects: int = 10, *, sam_penalty: float = 6.0, pretrained: bool = False,
          seed: int = 0) -> pd.DataFrame:
    """Two tasks; identity, MIND and ANTs once per subject, a random SAM architecture with
    three seeds (``sam_penalty`` mm worse than MIND), pretrained SAM when asked."""
    rng = np.random.default_rng(seed)
    rows = []
    for task in ("longitudinal", "modality"):
        for k in range(subjects):
            base = rng.normal(0, 0.3)
            cells = [("identity", None, 0, 9.0), ("mind", None, 0, 2.0),
                     ("ants", None, 0, 2.5)]
            cells += [("sam", "random", s, 2.0 + sam_penalty + 0.1 * s) for s in range(3)]
            if pretrained:
                cells.append(("sam", "pretrained", 0, 1.5))
            for method, weights, s, error in cells:
                rows.append({"task": task, "pair_id": f"{task}_{k:03d}", "method": method,
                             "weights": weights, "seed": s, "status": "ok",
                             "field_error_mean_mm": error + base + rng.normal(0, 0.05),
                             "dice_breast": 0.9, "dice_fgt": 0.5,
                             "stage_kept": "initial" if weights == "random" else "adam"})
    return pd.DataFrame(rows)


def test_the_answer_states_each_claim_with_its_numbers():
    rows = study()
    text = answer_in_words(rows)
    assert text.startswith("This build ran 10 synthetic subjects per task (2 tasks")
    assert "with 3 seeds" in text
    for claim in (1, 2, 3, 4):
        assert f"**Claim {claim}**" in text
    assert "ran without pretrained weights" in text and PRETRAINED_COMMAND in text
    control = text[text.index("**Control**"):].split("\n\n")[0]
    assert "held in longitudinal, modality" in control
    tests = task_tests(rows, "field_error_mean_mm")
    sam = tests[(tests["task"] == "modality") & (tests["arm"] == "sam (random)")].iloc[0]
    assert f"MIND {sam['reference_mean']:.2f} mm" in text
    assert f"sam (random) {sam['mean']:.2f} mm (seeds" in text
    assert "the stage guard would have replaced 30 of 30 encoder results by an earlier " \
           "stage." in text  # no flags: nothing said of them
    flagged = rows.copy()
    flagged["verdict"] = np.where((flagged["task"] == "modality")
                                  & (flagged["method"] == "sam"), "folded", "ok")
    assert ("30 of 30 encoder results by an earlier stage (their own fields folded on 30 "
            "and ended worse than no registration on 0).") in answer_in_words(flagged)


def test_the_answer_follows_the_rows():
    """A random architecture as good as MIND turns the control claim to 'not held', and
    pretrained rows drop the 'random weights only' limit."""
    text = answer_in_words(study(sam_penalty=-0.1, pretrained=True))  # seeds average 0
    control = text[text.index("**Control**"):].split("\n\n")[0]
    assert "not held in longitudinal, modality" in control
    assert "not significantly worse than MIND: sam (random)" in control
    assert "No pretrained checkpoint could be downloaded" not in text
    assert answer_in_words(study().iloc[:0]).startswith("No study rows")


def test_power_in_words_reads_the_power_table():
    text = power_in_words(study())
    assert "With 10 subjects and 3 Holm-corrected two-sided Wilcoxon tests" in text
    assert "- **modality**: 10 subjects, 3 comparisons" in text
    tests = task_tests(study(), "field_error_mean_mm")
    modality = tests[tests["task"] == "modality"]
    above = int((modality["difference"].abs() > modality["detectable"]).sum())
    assert above >= 2  # identity (+7 mm) and random SAM (+6 mm) clear it by far
    assert f"{above} of the 3 observed differences from MIND exceed" in text
