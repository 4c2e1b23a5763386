"""How well a registration did: metric definitions (:mod:`~breastlib.evaluate.metrics`), the
one evaluation of a pair (:mod:`~breastlib.evaluate.pair`), the verdict on a row
(:mod:`~breastlib.evaluate.verdict`), statistics and claims over a study table
(:mod:`~breastlib.evaluate.statistics`, :mod:`~breastlib.evaluate.claims`), and body and
breast masks from the image alone, for exams without label maps
(:mod:`~breastlib.evaluate.image_masks`)."""
