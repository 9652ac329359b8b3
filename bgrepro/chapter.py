"""What every chapter of the book starts with, in one place.

    from bgrepro.chapter import *  # noqa: F403 - plt, np, pd, glue, paper, plots, studies, setup, show
    P = setup(profile)

`setup` quiets library warnings, makes glued numbers print plainly and tables show one decimal, and
returns the chapter's profile. `show(study)` glues the numbers a `bgrepro.studies.Study` holds (the
text quotes them by name) and returns its table for display.
"""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import paper, plots, studies
from .profiles import Profile, get_profile

try:  # the book's glue (MyST-NB); a chapter opened without the book tools still runs
    from myst_nb import glue
except ImportError:  # pragma: no cover - the book extras are installed with `make setup`
    def glue(name, value, display=True):  # noqa: ARG001
        """Without MyST-NB: show the value, glue nothing."""
        return value if display else None

__all__ = ["glue", "np", "paper", "pd", "plots", "plt", "setup", "show", "studies"]


def setup(profile: str) -> Profile:
    """Prepare a chapter's kernel and return its profile."""
    warnings.filterwarnings("ignore", category=UserWarning)
    np.set_printoptions(legacy="1.25")  # glue shows numpy scalars as plain numbers
    pd.set_option("display.precision", 1)
    return get_profile(profile)


def show(study: studies.Study, table: str | None = None):
    """The study's main table, with its numbers glued for the text (not displayed); or one of its
    further tables by name (nothing glued again)."""
    if table is not None:
        return study.tables[table]
    for name, value in study.numbers.items():
        glue(name, value, display=False)
    return study.table
