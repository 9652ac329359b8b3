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
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import plots
from ..layout import data_kind
from ..profiles import Profile, get_profile
from ..registry import model_name
from ..variants import title
from . import paper, studies
from .verdicts import CLAIMS

try:  # the book's glue (MyST-NB); a chapter opened without the book tools still runs
    from myst_nb import glue
except ImportError:  # pragma: no cover - the book extras are installed with `make setup`
    def glue(name, value, display=True):  # noqa: ARG001
        """Without MyST-NB: show the value, glue nothing."""
        return value if display else None

__all__ = ["badge", "claims_figure", "claims_table", "folder", "glue", "imagenet_note", "label", "np", "number",
           "paper", "pd", "not_run_box", "plots", "plt", "scale_box", "setup", "show", "studies", "table", "table_html",
           "verdict_box", "words_table"]


def number(value) -> str:
    """A table cell as the book prints it: an em dash for a missing number, one decimal from 1 up, three
    significant digits below (a learning rate of 0.05 or a weight decay of 0.0005 stays what it is), a count from
    10,000 up in groups of three digits, yes or no, and words (`label`) for the package's names."""
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return "\u2014"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, str):
        return label(value)
    if isinstance(value, tuple | list):  # a profile's list of networks: words, not a Python tuple
        names = [label(v) for v in value]
        return ("; " if any("," in n for n in names) else ", ").join(names)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
    if isinstance(value, float | np.floating):
        return f"{value:.1f}" if abs(value) >= 1 or value == 0 else f"{value:.3g}"
    return str(value)


#: Names of the package's own that a reader reads otherwise, in the book's words (variants have theirs in
#: `variants.TITLES`, models in `registry.model_name`): table entries, a profile's settings, the kinds of experiment
#: record, the chapters.
WORDS = {"bg_gap": "BG-Gap", "imagenet": "ImageNet", "split_2x2": "split", "ci95 low": "95% interval, low",
         "ci95 high": "95% interval, high", "fg_mask": "foreground masks", "cpu_cores": "CPU cores",
         # the build's rejection reasons (`composite.Rejected`)
         "box_outside_crop": "box outside the crop", "box_too_large": "box too large for the crop",
         "grabcut_too_small": "GrabCut kept too little of the box", "no_mask": "no mask",
         "not_one_box": "not exactly one box",
         # `profiles.Profile`
         "image_size": "image side (px)", "train_per_class": "training images per class",
         "test_per_class": "test images per class", "arch": "network", "batch_size": "batch size",
         "lr": "peak learning rate", "weight_decay": "weight decay", "gpu": "expects a GPU",
         "zoo_archs": "networks of the progress zoo", "zoo_epochs": "epochs of the zoo's networks",
         "table_archs": "networks of the BG-Gap table", "challenge_pairs_per_class": "challenge: foregrounds per class",
         "spread_seeds": "seeds per model (spread)", "ssl_epochs": "SimSiam epochs (RPS backbone)",
         "real_per_class": "real photos per class", "real_challenge_budget": "real photos: composites per model",
         "real_models": "real photos: ImageNet models",
         "rps_benchmark_per_class": "RPS box benchmark: photos per class",
         "sensitivity_strengths": "generator study: habitat strengths R",
         "sensitivity_per_class": "generator study: images per class (training, test)",
         "sensitivity_epochs": "generator study: epochs",
         # `records.cached` kinds
         "trained_model": "trained models", "pretrained_eval": "ImageNet models scored",
         "pretrained_challenge": "ImageNet models' challenge", "challenge": "backgrounds challenge",
         "saliency": "Grad-CAM saliency", "simsiam": "SimSiam backbone", "rps_localization": "RPS localization",
         "mask_quality": "mask quality", "rps_predictor": "RPS predictor", "finegrained": "fine-grained categories",
         "real_photos": "real photos: accuracy", "real_saliency": "real photos: Grad-CAM",
         "real_mask_quality": "real photos: mask quality", "real_rps_benchmark": "real photos: RPS box benchmark",
         "real_mask_check": "real photos: masks against the boxes", "zoo_halves": "progress zoo on two halves",
         "sensitivity_data": "generator study: variants built",
         # chapters (`runner.ORDER`), by their titles
         "backgrounds_suffice": "Backgrounds suffice", "mixed_rand_training": "Training on Mixed-Rand",
         "adversarial": "Adversarial backgrounds", "progress": "Benchmark progress", "localization": "Localization",
         "generator": "How much is the generator?"}


def _word(name: str) -> str:
    """One name as a reader reads it: `WORDS`, a variant's title, a model's name."""
    return WORDS.get(name) or model_name(title(name))


def label(name) -> str:
    """A row or column name as a reader reads it: the paper's name of a variant or of a model, also before a
    parenthesis ("Mixed-Rand (on the fly)", "small CNN, narrow (2 epochs)"), the book's words for the package's names
    (`WORDS`), the parts of a tuple joined; other names as they are."""
    if isinstance(name, tuple):
        return ", ".join(label(n) for n in name)
    if not isinstance(name, str):
        return str(name)
    head, paren, rest = name.partition(" (")
    return WORDS.get(name) or (_word(head) + paren + rest if paren else _word(name))


def folder(path) -> str:
    """A folder as a page names it: its name, never the path of the machine that built the book."""
    return Path(str(path)).name or str(path)


def _header(text) -> str:
    """A header cell's words as HTML: escaped, and a name whose hyphen joins a part of under three letters (Only-BG-T,
    ResNet-50, IN-9L, top-1) kept on one line; a hyphen between words (Mixed-Rand, self-supervised) may end a line,
    as in print. The book check measures the same rule (`runner._MEASURE_TABLES`)."""
    out = []
    for token in re.split(r"(\s+)", str(text)):
        parts = token.split("-")
        chunks = [parts[0]]
        for left, right in zip(parts, parts[1:]):
            if re.search(r"[A-Za-z]{3}$", left) and re.match(r"[A-Za-z]{3}", right):
                chunks[-1] += "-"
                chunks.append(right)
            else:
                chunks[-1] += "-" + right
        out += [f"<span style='white-space:nowrap'>{html.escape(c)}</span>" if "-" in c.rstrip("-") else html.escape(c)
                for c in chunks]
    return "".join(out)


class _Tables:
    """How many tables this page has numbered (`setup` starts a page at none)."""

    count = 0


def _caption(caption: str) -> str:
    """A table's caption element: the next number of its page and the sentence (`backticks` as code)."""
    _Tables.count += 1
    return (f"<caption style='text-align:left'><span class=\"caption-number\">Table {_Tables.count} </span>"
            f"<span class=\"caption-text\">{_code(caption)}</span></caption>")


#: A table's type size and its cells' side padding by its number of columns (index levels included), most first, so
#: that the 676 px column of a page at 1280 px holds the widest of the book's tables whole (the book check measures).
DENSE = ((10, "0.75em", "0.3em"), (7, "0.8em", "0.3em"), (0, "0.9em", "0.4em"))


def table_html(frame: pd.DataFrame, caption: str | None = None) -> str:
    """A DataFrame as a page shows it: numbered with its caption above it, `number` in every cell, the paper's
    names for variants and models, numbers right-aligned so their digits line up and words left-aligned and
    wrapped, headers wrapped between words only (`_header`), so the table fits the page: a table of many columns
    (`DENSE`) in smaller type, since its headers' words may not be broken to make room."""
    columns = len(frame.columns) + frame.index.nlevels
    size, pad = next((s, p) for n, s, p in DENSE if columns >= n)
    frame = frame.rename(index=label, columns=label).rename_axis(
        index=[None if n is None else label(n) for n in frame.index.names])
    words = [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, str)).any()]
    styled = frame.style.format(number).format_index(_header, axis=0).format_index(_header, axis=1)
    styled = styled.set_table_styles([
        {"selector": "", "props": f"width:100%;table-layout:auto;border-collapse:collapse;font-size:{size}"},
        {"selector": "td, th", "props": f"padding:0.2em {pad};white-space:normal"},
        {"selector": "td", "props": "text-align:right"}])
    if words:
        styled = styled.set_properties(subset=words, **{"text-align": "left", "overflow-wrap": "anywhere"})
    body = styled.to_html()
    if caption is not None:
        body = re.sub(r"<table\b[^>]*>", lambda m: m.group(0) + _caption(caption), body, count=1)
    return f"<div class='table-fit' style='max-width:100%'>{body}</div>"


def table(frame: pd.DataFrame | pd.Series, caption: str):
    """A table for a page: `table_html` with the next number of its page and `caption`, the sentence that says what
    it shows (every table of the book has one; the book check fails a table without)."""
    from IPython.display import HTML

    return HTML(table_html(frame.to_frame() if isinstance(frame, pd.Series) else frame, caption))


def setup(profile: str) -> Profile:
    """Prepare a chapter's kernel and return its profile: its tables numbered from 1 (`table`), DataFrames displayed
    through `table_html`."""
    _Tables.count = 0
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
        return Markdown(f"{what}: computed here with the ImageNet weights on disk "
                        f"({', '.join(map(model_name, pretrained))}).")
    missing = []
    if kind != "in9":
        missing.append("IN-9's photographs (these numbers come from "
                       + ("the synthetic stand-in, whose classes an ImageNet model was never taught)" if kind ==
                          "synthetic" else f"the folder {folder(data)})"))
    if not pretrained:
        missing.append("the paper's ImageNet weights (torchvision's, for its ResNet-50 and the other models of "
                       "Table 2), which are not in this machine's torch cache")
    return Markdown(f"{what}: no counterpart on this page; it needs {' and '.join(missing)}. With a network, "
                    "`make reproduce DATA=in9` fetches IN-9, and `bgrepro eval --data data/in9 --arch resnet50 "
                    "--pretrained` (or `--weights FILE` for a local file) fetches torchvision's original weights; the "
                    "chapter then computes it beside the paper's. The real-photo chapter measures the same offline, "
                    "on ImageNet validation photos built into IN-9's variants the paper's way, with the ImageNet "
                    "models installed here (EfficientNet-Lites and MobileNets, not the paper's).")


def scale_text(profile: Profile, data, synth=None, rps: bool = False) -> str:
    """What produced a page's numbers (the data, its size, the network, epochs and seeds, and the generator
    setting the verdicts of claims 1 and 2 depend on), and how to get the paper's scale, in one paragraph; with
    `rps`, the localization page's: the backbones here and the RPS paper's."""
    kind = data_kind(data)
    what = {"synthetic": "synthetic IN-9 (procedural objects on procedural habitats, not photographs)",
            "in9": "the official IN-9 test sets"}.get(kind, f"the data in the folder {folder(data)}")
    arch = model_name(profile.arch)
    text = (f"Scale of these numbers: {what}, {profile.image_size} px, the {arch} network trained "
            f"{profile.epochs} epochs, {profile.spread_seeds} seeds (profile {profile.name}).")
    if rps:
        return (f"Scale of these numbers: {what}, {profile.image_size} px; the backbones are a {arch} trained "
                f"here without labels by SimSiam ({profile.ssl_epochs} epochs) and the trunk of our Original-trained "
                f"{arch}. The RPS paper: DINO and MoCo ResNet-50 and ViT-S backbones pretrained on ImageNet, "
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
          "contradicts the paper": "#8a1c7c", "not shown": "#4b5a9a", "inconclusive": "#5f6368",
          "no counterpart here": "#7a7a7a"}


def badge(verdict: str) -> str:
    """A verdict as a coloured badge (HTML): one line where it fits, a box of wrapped lines in a narrow column."""
    return (f"<span style='background:{BADGES.get(verdict, '#444')};color:#fff;border-radius:0.8em;padding:"
            f"0.1em 0.6em;display:inline-block;max-width:100%;font-size:0.9em'>{html.escape(verdict)}</span>")


def verdict_box(verdicts: list, profile: Profile, data, synth=None, scale: str | None = None):
    """The box a chapter opens with: a compact table of its claims, one row a claim, its verdict as a badge (computed
    from the numbers by a criterion fixed in `bgrepro.book.verdicts`) with the reason and a link back to the claims
    page; where several models are judged on one claim (the real-photo chapter, whose reasons open with the model's
    name), the models that share a verdict are named beside its badge and the reasons are one click away. Then the
    scale (`scale`, or the synthetic chapters' own words)."""
    from IPython.display import HTML

    rps = any(v.claim == "RPS" for v in verdicts)
    rows = []
    for claim in dict.fromkeys(v.claim for v in verdicts):
        mine = [v for v in verdicts if v.claim == claim]
        link = (f"<b>{html.escape(claim)}</b> {html.escape(CLAIMS[claim].title)}<br><a href='claims.html#claim-"
                f"{html.escape(claim)}'>the paper's words</a>")
        if len(mine) == 1:
            v = mine[0]
            rows.append(f"<tr><td>{link}</td><td>{badge(v.verdict)}</td><td>{_code(v.reason[0].upper() + v.reason[1:])}"
                        "</td></tr>")
            continue
        kinds = dict.fromkeys(v.verdict for v in mine)
        models = {k: ", ".join(v.reason.split(": ")[0] for v in mine if v.verdict == k) for k in kinds}
        said = "<br>".join(f"{badge(k)} {html.escape(names)}" for k, names in models.items())
        why = "".join(f"<li>{_code(v.reason)}</li>" for v in mine)
        rows.append(f"<tr><td>{link}</td><td>{said}</td><td><details><summary>why, model by model</summary>"
                    f"<ul style='margin:0'>{why}</ul></details></td></tr>")
    table = _sentence_table("verdicts", ("claim", "verdict", "why"), ("22%", "28%", "50%"), rows,
                            "This page's verdicts, each computed by the claim's criterion fixed in advance.")
    return HTML(f"<div class='admonition note'><p class='admonition-title'>Verdict</p>{table}"
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


def claims_table(verdicts: list, real: dict[str, str] | None = None, caption: str | None = None):
    """The claims page's table: per claim the paper's sentence with its place, our number with its interval, the
    paper's, the verdict as a badge with its reason, a link to the chapter with the evidence, and, with `real`
    (claim -> words, `realphotos.column`), the verdicts of the ImageNet models on real photos; numbered, with its
    `caption` (`table`)."""
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
            f"</span></td><td>{badge(v.verdict)}<br>{_code(v.reason)}</td>"
            + (f"<td>{_real_cell(real.get(v.claim, ''))}</td>" if real is not None else "") + "</tr>")
    if real is None:
        return HTML(_sentence_table("claims", ("claim", "the paper says", "ours (95% interval) and the paper's",
                                               "verdict and why"), ("17%", "33%", "23%", "27%"), rows, caption))
    return HTML(_sentence_table("claims", ("claim", "the paper says", "synthetic: ours (95% interval) and the "
                                           "paper's", "synthetic: verdict and why", "real photos (ImageNet models)"),
                                ("12%", "26%", "19%", "24%", "19%"), rows, caption))


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


def words_table(rows: list[dict], widths: tuple[str, ...] | None = None, caption: str | None = None):
    """A table of sentences (HTML, left-aligned, wrapped to the page): criteria, their history, sources; numbered,
    with its `caption` (`table`)."""
    from IPython.display import HTML

    columns = list(rows[0]) if rows else []
    body = ["<tr>" + "".join(f"<td>{_code(str(r[c]))}</td>" for c in columns) + "</tr>" for r in rows]
    return HTML(_sentence_table("words", columns, widths or (), body, caption))


def _sentence_table(name: str, columns, widths, rows: list[str], caption: str | None = None) -> str:
    """The HTML of a table of sentences of class `name`: its caption (`_caption`), column widths, left-aligned
    headings (`_header`) and rows (`<tr>` HTML), styled by `_WORDS_STYLE`; in a block of its own, whose width is the
    table's 100% (a box's margins around it, as an admonition gives its contents, then narrow the table, never push
    it past the page)."""
    cols = "".join(f"<col style='width:{w}'>" for w in widths)
    head = "".join(f"<th style='text-align:left'>{_header(c)}</th>" for c in columns)
    return (f"<div class='table-fit'><table class='{name}'>{'' if caption is None else _caption(caption)}<colgroup>"
            f"{cols}</colgroup><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"{_WORDS_STYLE.format(name=name)}</div>")


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
