"""The study: every method on every pair of a cohort (:mod:`~breastlib.study.run`), each
cell computed in a fresh process (:mod:`~breastlib.study.worker`), resumable, into one
results table."""
