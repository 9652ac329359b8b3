"""What every chapter of the book starts with, in one place.

    from bgrepro.book.chapter import *  # noqa: F403 - plt, np, pd, glue, paper, plots, studies, setup, show
    P = setup(profile)

`setup` quiets library warnings, makes glued numbers print plainly and tables show one decimal, and
returns the chapter's profile. `show(study)` glues the numbers a `bgrepro.book.studies.Study` holds (the
text quotes them by name) and returns its table for display.
"""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import plots
from ..profiles import Profile, get_profile
from . import paper, studies

try:  # the book's glue (MyST-NB); a chapter opened without the book tools still runs
    from myst_nb import glue
except ImportError:  # pragma: no cover - the book extras are installed with `make setup`
    def glue(name, value, display=True):  # noqa: ARG001
        """Without MyST-NB: show the value, glue nothing."""
        return value if display else None

__all__ = ["glue", "imagenet_note", "np", "number", "paper", "pd", "plots", "plt", "setup", "show", "studies",
           "table_html",
           "verdict_box"]


def number(value) -> str:
    """A table cell as the book prints it: an em dash for a missing number, one decimal from 1 up, three
    significant digits below (a learning rate of 0.05 or a weight decay of 0.0005 stays what it is)."""
    import math

    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return "\u2014"
    if isinstance(value, bool | np.bool_ | str):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return f"{value:.1f}" if abs(value) >= 1 or value == 0 else f"{value:.3g}"
    return str(value)


def table_html(frame: pd.DataFrame) -> str:
    """A DataFrame as a page shows it: `number` in every cell, scrolling sideways when wider than the page."""
    inner = (frame.style.format(number)  # cells apart, numbers right-aligned so their digits line up
             .set_table_styles([{"selector": "td, th", "props": "padding: 0.2em 0.7em"},
                                {"selector": "td", "props": "text-align: right"}]).to_html())
    return f"<div class='table-scroll' style='overflow-x:auto;max-width:100%'>{inner}</div>"


def setup(profile: str) -> Profile:
    """Prepare a chapter's kernel and return its profile: DataFrames display through `table_html`."""
    warnings.filterwarnings("ignore", category=UserWarning)
    np.set_printoptions(legacy="1.25")  # glue shows numpy scalars as plain numbers
    pd.set_option("display.precision", 1)
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover - IPython comes with the book tools
        shell = None
    if shell is not None:
        shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, table_html)
    return get_profile(profile)


def show(study: studies.Study, table: str | None = None):
    """The study's main table, with its numbers glued for the text (not displayed); or one of its
    further tables by name (nothing glued again)."""
    if table is not None:
        return study.tables[table]
    for name, value in study.numbers.items():
        glue(name, value, display=False)
    return study.table


def imagenet_note(data, pretrained: tuple[str, ...], what: str):
    """Whether `what` (the paper's ImageNet-pretrained numbers) has a counterpart here, and if not, why and
    the command that computes it: it needs IN-9's photographs and ImageNet weights."""
    from IPython.display import Markdown

    from ..layout import data_kind

    kind = data_kind(data)
    if pretrained and kind == "in9":
        return Markdown(f"{what}: computed here with the ImageNet weights on disk ({', '.join(pretrained)}).")
    missing = []
    if kind != "in9":
        missing.append("IN-9's photographs (these numbers come from "
                       + ("the synthetic stand-in, whose classes an ImageNet model was never taught)" if kind ==
                          "synthetic" else f"{data})"))
    if not pretrained:
        missing.append("ImageNet weights, none of which is in this machine's torch cache")
    return Markdown(f"{what}: no counterpart here; it needs {' and '.join(missing)}. With a network, "
                    "`make reproduce DATA=in9` fetches IN-9, and `bgrepro eval --data data/in9 --arch resnet50 "
                    "--pretrained` (or `--weights FILE` for a local file) fetches torchvision's original weights; the "
                    "chapter then computes it beside the paper's.")


def scale_text(profile: Profile, data) -> str:
    """What produced a page's numbers, and how to get the paper's scale, in one paragraph."""
    from ..layout import data_kind

    where = str(data)
    kind = data_kind(data)
    what = {"synthetic": "the embedded synthetic IN-9 (procedural objects on procedural habitats)",
            "in9": "the official IN-9 test sets"}.get(kind, f"the data in {where}")
    return (f"These numbers: {what}, {profile.image_size} px, the {profile.arch} network trained "
            f"{profile.epochs} epochs (profile {profile.name}). The paper: IN-9's photographs at 224 px, "
            "ResNet-50 and the models of its Table 2. The paper's scale: `make reproduce PROFILE=full DATA=in9` "
            "on a GPU.")


def verdict_box(verdicts: list, profile: Profile, data):
    """The box a chapter opens with: each of its claims' verdict (computed from the numbers by a criterion fixed
    in `bgrepro.book.verdicts`) and the scale banner."""
    import html

    from IPython.display import HTML

    colours = {"reproduced": "#1b7f3b", "partly reproduced": "#9a6700", "not reproduced": "#b42318",
               "no counterpart at this scale": "#555"}
    items = "".join(
        f"<li><b style='color:{colours.get(v.verdict, '#222')}'>{html.escape(v.verdict.capitalize())}</b>: "
        f"claim {html.escape(v.claim)}, {html.escape(v.statement[0].lower() + v.statement[1:])}. "
        f"{html.escape(v.reason[0].upper() + v.reason[1:])}. <span style='color:#555'>Criterion: "
        f"{html.escape(v.criterion)}.</span></li>" for v in verdicts)
    banner = html.escape(scale_text(profile, data)).replace("`make reproduce PROFILE=full DATA=in9`",
                                                             "<code>make reproduce PROFILE=full DATA=in9</code>")
    return HTML(f"<div class='admonition note'><p class='admonition-title'>Verdict at this scale</p><ul>{items}</ul>"
                f"<p style='font-size:.9em'>{banner}</p></div>")
