"""Figures: static QC pictures and interactive viewers."""
