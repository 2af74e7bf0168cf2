"""A small analytics kit: the code under test of forkd's ci-parallel-pytest example project."""
from .arrays import moving_average, normalize, zscores
from .frames import monthly_totals, top_n, wide_to_long
from .models import fit_classifier, fit_regressor, split
from .text import slugify, word_counts, parse_duration

__all__ = [
    "moving_average", "normalize", "zscores",
    "monthly_totals", "top_n", "wide_to_long",
    "fit_classifier", "fit_regressor", "split",
    "slugify", "word_counts", "parse_duration",
]
