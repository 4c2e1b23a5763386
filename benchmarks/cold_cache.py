"""Timed registrations start with empty on-disk caches.

breastlib caches encoder features and the affine start on disk (``$BREASTLIB_CACHE``), so
a second method on a pair, or a rerun of a benchmark on the same deterministic phantom,
would time cache hits. Every timed run of the benchmarks here goes through
:func:`empty_cache`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def empty_cache() -> Iterator[dict[str, str]]:
    """Point ``$BREASTLIB_CACHE`` at a new empty folder for the ``with`` block (removed
    after it); yields the environment to hand to a child process."""
    previous = os.environ.get("BREASTLIB_CACHE")
    with tempfile.TemporaryDirectory(prefix="breastlib-bench-cache-") as folder:
        os.environ["BREASTLIB_CACHE"] = folder
        try:
            yield dict(os.environ)
        finally:
            if previous is None:
                os.environ.pop("BREASTLIB_CACHE", None)
            else:
                os.environ["BREASTLIB_CACHE"] = previous
