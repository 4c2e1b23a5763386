"""Support for the book: which cohort and study results a build uses, and the chapters'
Colab notebooks.

``python -m breastlib.booktools sync`` re-renders every chapter's Colab set-up cell and
its ``.ipynb`` twin (see :mod:`breastlib.booktools.notebooks`).
"""
