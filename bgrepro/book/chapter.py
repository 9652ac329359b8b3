"""What every chapter of the book starts with, in one place.

    from bgrepro.book.chapter import *  # noqa: F403 - plt, np, pd, glue, paper, plots, studies, setup, show
    P = setup(profile)

`setup` quiets library warnings, makes glued numbers print plainly and tables show one decimal, and
returns the chapter's profile. `show(study)` glues the numbers a `bgrepro.book.studies.Study` holds (the
text quotes them by name) and returns its table for display.
"""

from __future__ import annotations

import html
import math
import re
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import plots
from ..layout import data_kind
from ..profiles import Profile, get_profile
from ..variants import title
from . import paper, studies
from .verdicts import CLAIMS

try:  # the book's glue (MyST-NB); a chapter opened without the book tools still runs
    from myst_nb import glue
except ImportError:  # pragma: no cover - the book extras are installed with `make setup`
    def glue(name, value, display=True):  # noqa: ARG001
        """Without MyST-NB: show the value, glue nothing."""
        return value if display else None

__all__ = ["badge", "claims_figure", "claims_table", "glue", "imagenet_note", "label", "np", "number", "paper", "pd",
           "not_run_box", "plots", "plt", "scale_box", "setup", "show", "studies", "table_html", "verdict_box",
           "words_table"]


def number(value) -> str:
    """A table cell as the book prints it: an em dash for a missing number, one decimal from 1 up, three
    significant digits below (a learning rate of 0.05 or a weight decay of 0.0005 stays what it is)."""
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return "\u2014"
    if isinstance(value, bool | np.bool_ | str):
        return str(value)
    if isinstance(value, tuple | list):  # a profile's list of networks: words, not a Python tuple
        return ", ".join(label(v) for v in value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return f"{value:.1f}" if abs(value) >= 1 or value == 0 else f"{value:.3g}"
    return str(value)


#: Names of the package's tables that a reader reads otherwise (variants have theirs in `variants.TITLES`).
WORDS = {"bg_gap": "BG-Gap", "imagenet": "ImageNet", "split_2x2": "split", "ci95 low": "95% interval, low",
         "ci95 high": "95% interval, high", "fg_mask": "foreground masks"}


def label(name) -> str:
    """A row or column name as a reader reads it: the paper's name of a variant, also before a parenthesis
    ("Mixed-Rand (on the fly)"), the book's words for the package's names (`WORDS`), the parts of a tuple
    joined; other names as they are."""
    if isinstance(name, tuple):
        return ", ".join(label(n) for n in name)
    if not isinstance(name, str):
        return str(name)
    head, paren, rest = name.partition(" (")
    return WORDS.get(name) or (title(head) + paren + rest if paren else title(name))


def table_html(frame: pd.DataFrame) -> str:
    """A DataFrame as a page shows it: `number` in every cell, the paper's names for variants, numbers
    right-aligned so their digits line up and words left-aligned and wrapped, so the table fits the page."""
    frame = frame.rename(index=label, columns=label).rename_axis(
        index=[None if n is None else label(n) for n in frame.index.names])
    words = [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, str)).any()]
    styled = frame.style.format(number).set_table_styles([
        {"selector": "", "props": "width:100%;table-layout:auto;border-collapse:collapse;font-size:0.9em"},
        {"selector": "td, th", "props": "padding:0.2em 0.4em;white-space:normal"},
        {"selector": "th", "props": "overflow-wrap:anywhere"},
        {"selector": "td", "props": "text-align:right"}])
    if words:
        styled = styled.set_properties(subset=words, **{"text-align": "left", "overflow-wrap": "anywhere"})
    return f"<div class='table-fit' style='max-width:100%'>{styled.to_html()}</div>"


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
                    "chapter then computes it beside the paper's. The real-photo chapter measures it offline, on "
                    "ImageNet validation photos built into IN-9's variants the paper's way, with seven ImageNet "
                    "models.")


def scale_text(profile: Profile, data, synth=None, rps: bool = False) -> str:
    """What produced a page's numbers (the data, its size, the network, epochs and seeds, and the generator
    setting the verdicts of claims 1 and 2 depend on), and how to get the paper's scale, in one paragraph; with
    `rps`, the localization page's: the backbones here and the RPS paper's."""
    kind = data_kind(data)
    what = {"synthetic": "synthetic IN-9 (procedural objects on procedural habitats, not photographs)",
            "in9": "the official IN-9 test sets"}.get(kind, f"the data in {data}")
    text = (f"Scale of these numbers: {what}, {profile.image_size} px, the {profile.arch} network trained "
            f"{profile.epochs} epochs, {profile.spread_seeds} seeds (profile {profile.name}).")
    if rps:
        return (f"Scale of these numbers: {what}, {profile.image_size} px; the backbones are a {profile.arch} trained "
                f"here without labels by SimSiam ({profile.ssl_epochs} epochs) and the trunk of our Original-trained "
                f"{profile.arch}. The RPS paper: DINO and MoCo ResNet-50 and ViT-S backbones pretrained on ImageNet, "
                "scored on CUB-200-2011, ImageNet-1K and OpenImages30k. The full profile trains a ResNet-50 by "
                "SimSiam on IN-9's photographs at 224 px (`make reproduce PROFILE=full DATA=in9`, on a GPU); "
                "`bgrepro localize --backbone dino_resnet50` reads the paper's own DINO ResNet-50.")
    setting = studies.generator_setting(synth) if kind == "synthetic" else None
    if setting:
        text += (f" The generator ties habitat to class with correlation R = {setting['correlation']:g}, so a "
                 f"background's habitat alone can be right on at most {setting['ceiling']:.1f}% of images (a "
                 "background-only model can exceed it only through what its variant keeps of the object, such as "
                 "Only-BG-B's black box in the object's place and size): claims 1 and 2 depend on it.")
    return text + (" The paper: IN-9's photographs at 224 px, ResNet-50 and the models of its Table 2 "
                   "(`make reproduce PROFILE=full DATA=in9`, on a GPU).")


def _code(text: str) -> str:
    """Text as HTML, `backticked` words as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


#: Each verdict's badge colour (white text on it).
BADGES = {"reproduced": "#1b7f3b", "partly reproduced": "#9a6700", "not reproduced": "#b42318",
          "not shown at this scale": "#4b5a9a", "inconclusive at this scale": "#5f6368",
          "no counterpart at this scale": "#7a7a7a"}


def badge(verdict: str) -> str:
    """A verdict as a coloured badge (HTML): one line where it fits, a box of wrapped lines in a narrow column."""
    return (f"<span style='background:{BADGES.get(verdict, '#444')};color:#fff;border-radius:0.8em;padding:"
            f"0.1em 0.6em;display:inline-block;max-width:100%;font-size:0.9em'>{html.escape(verdict)}</span>")


def verdict_box(verdicts: list, profile: Profile, data, synth=None, scale: str | None = None):
    """The box a chapter opens with: each of its claims' verdict as a badge (computed from the numbers by a
    criterion fixed in `bgrepro.book.verdicts`), the reason, a link back to the claims page, and the scale (`scale`,
    or the synthetic chapters' own words)."""
    from IPython.display import HTML

    rps = any(v.claim == "RPS" for v in verdicts)
    items = "".join(
        f"<li>{badge(v.verdict)} <b>Claim {html.escape(v.claim)}</b>, {html.escape(CLAIMS[v.claim].title.lower())}: "
        f"{html.escape(v.reason[0].upper() + v.reason[1:])}. <a href='claims.html#claim-{html.escape(v.claim)}'>All "
        f"claims, with the paper's words and the criterion</a></li>" for v in verdicts)
    return HTML(f"<div class='admonition note'><p class='admonition-title'>Verdict at this scale</p><ul>{items}</ul>"
                f"<p style='font-size:.9em'>{_code(scale or scale_text(profile, data, synth, rps))}</p></div>")


def not_run_box(text: str):
    """The box a chapter shows instead of its results when it has nothing to run on (`text` says what to give it);
    the book check knows it (`runner.NOT_RUN`) and asks such a page for no figure."""
    from IPython.display import HTML

    from .runner import NOT_RUN

    return HTML(f"<div class='admonition warning {NOT_RUN}'><p class='admonition-title'>Not run</p>"
                f"<p>{_code(text)}</p></div>")


def scale_box(profile: Profile, data, synth=None):
    """The box a page without verdicts opens with: what scale made its numbers (`scale_text`)."""
    from IPython.display import HTML

    return HTML(f"<div class='admonition note'><p class='admonition-title'>Scale of this page's numbers</p>"
                f"<p style='font-size:.9em'>{_code(scale_text(profile, data, synth))}</p></div>")


def claims_table(verdicts: list, real: dict[str, str] | None = None):
    """The claims page's table: per claim the paper's sentence with its place, our number with its interval, the
    paper's, the verdict as a badge with its reason, a link to the chapter with the evidence, and, with `real`
    (claim -> words, `realphotos.column`), the verdicts of the ImageNet models on real photos."""
    from IPython.display import HTML

    rows = []
    for v in verdicts:
        claim = CLAIMS[v.claim]
        where = f"{claim.chapter}.html" + (f"#{claim.section}" if claim.section else "")
        rows.append(
            f"<tr id='claim-{html.escape(v.claim)}'><td><b>{html.escape(v.claim)}</b> {html.escape(claim.title)}"
            f"<br><a href='{where}'>evidence</a></td><td>\u201c{html.escape(claim.quote)}\u201d <span "
            f"style='color:#555;font-size:.9em'>({html.escape(claim.place)})</span></td>"
            f"<td>{html.escape(v.ours)}<br><span style='color:#555;font-size:.9em'>paper: {html.escape(v.paper)}"
            f"</span></td><td>{badge(v.verdict)}<br>{html.escape(v.reason)}</td>"
            + (f"<td>{_real_cell(real.get(v.claim, ''))}</td>" if real is not None else "") + "</tr>")
    if real is None:
        return HTML(_sentence_table("claims", ("claim", "the paper says", "ours (95% interval) and the paper's",
                                               "verdict and why"), ("17%", "33%", "23%", "27%"), rows))
    return HTML(_sentence_table("claims", ("claim", "the paper says", "synthetic: ours (95% interval) and the "
                                           "paper's", "synthetic: verdict and why", "real photos (ImageNet models)"),
                                ("12%", "26%", "19%", "24%", "19%"), rows))


def _real_cell(text: str) -> str:
    """A real-photo verdict as a badge when it is one verdict for every model, else one line per model with its
    badge ("model: verdict; ..."), else the words as they are."""
    head = text.split(" (")[0]
    if head in BADGES:
        return badge(head) + html.escape(text[len(head):])
    parts = [part.rpartition(": ") for part in text.split("; ")]
    if len(parts) > 1 and all(verdict in BADGES for _, _, verdict in parts):
        return "<br>".join(f"{html.escape(model)}: {badge(verdict)}" for model, _, verdict in parts)
    return html.escape(text)


#: How a table of sentences reads: the page's width, wrapped, left-aligned, each row's top aligned.
_WORDS_STYLE = ("<style>table.{name}{{width:100%;table-layout:fixed;border-collapse:collapse;text-align:left;"
                "font-size:.92em}} table.{name} td{{vertical-align:top;padding:.4em;border-top:1px solid #ddd;"
                "white-space:normal;overflow-wrap:break-word;text-align:left}}</style>")


def words_table(rows: list[dict], widths: tuple[str, ...] | None = None):
    """A table of sentences (HTML, left-aligned, wrapped to the page): criteria, their history, sources."""
    from IPython.display import HTML

    columns = list(rows[0]) if rows else []
    body = ["<tr>" + "".join(f"<td>{_code(str(r[c]))}</td>" for c in columns) + "</tr>" for r in rows]
    return HTML(_sentence_table("words", columns, widths or (), body))


def _sentence_table(name: str, columns, widths, rows: list[str]) -> str:
    """The HTML of a table of sentences of class `name`: its column widths, left-aligned headings (escaped) and
    rows (`<tr>` HTML), styled by `_WORDS_STYLE`."""
    cols = "".join(f"<col style='width:{w}'>" for w in widths)
    head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in columns)
    return (f"<table class='{name}'><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}"
            f"</tbody></table>{_WORDS_STYLE.format(name=name)}")


def claims_figure(claims):
    """Every claim and its verdict at a glance: one row per claim, its verdict written in the verdict's colour
    (as wide as the page, so that every word of every verdict fits at a readable size)."""
    fig, ax = plt.subplots(figsize=(7.5, 0.36 * len(claims) + 0.7))
    y = list(range(len(claims)))[::-1]
    for row, ypos in zip(claims.itertuples(), y):
        ax.barh(ypos, 1, left=0, height=0.8, color=BADGES[row.verdict])
        ax.text(0.03, ypos, row.verdict, ha="left", va="center", fontsize=10, color="white")
    ax.set_yticks(y, [f"{c} {t}" for c, t in zip(claims["claim"], claims["title"])], fontsize=10)
    ax.set_xlim(0, 1)
    ax.set_xticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title("Verdict per claim, computed from the numbers", fontsize=11)
    fig.tight_layout(pad=0.3)
    return fig
