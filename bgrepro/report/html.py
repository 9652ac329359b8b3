"""The report's HTML page: one self-contained file (figures inline as data URIs, no script, link or font)
rendered from report.json's object and the figures `report` draws."""

from __future__ import annotations

import html
import json

from ..layout import short_name
from ..variants import MIXED_RAND, NAMES, ORIGINAL, title

_STYLE = """body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1060px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}h1{font-size:1.6em}
h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}th,td{border:1px solid #ccc;padding:.25em .6em;
text-align:right}th:first-child,td:first-child{text-align:left}thead th{background:#f2f2f2}
figure{margin:1em 0}figure img{max-width:100%}figcaption{font-size:.88em;color:#555}.warn{background:#fff3cd;
border:1px solid #e0c36a;padding:.5em .8em}.small{font-size:.85em;color:#555}code{background:#f4f4f4;padding:0 .2em}"""


def _fmt(value, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _interval(pair) -> str:
    return "" if not pair else f" [{_fmt(pair[0])}, {_fmt(pair[1])}]"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(figures: dict, key: str, caption: str) -> str:
    if key not in figures:
        return ""
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{figures[key]}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def render_html(report: dict, figures: dict[str, str]) -> str:
    """The self-contained HTML page of a report (no external file, script or font)."""
    esc = html.escape
    where = esc(str(report["arguments"]["images"]))
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Background reliance: "
             f"{where}</title><style>{_STYLE}</style></head><body>",
             "<h1>How much do these models lean on backgrounds?</h1>",
             f"<p class='small'>Photos: <code>{where}</code>, {len(report['classes'])} "
             f"classes ({esc(', '.join(report['classes'][:12]))}{', ...' if len(report['classes']) > 12 else ''}). "
             f"Method: Xiao et al., <i>Noise or Signal: The Role of Image Backgrounds in Object Recognition</i> "
             f"(ICLR 2021). {esc(report['units'])}.</p>",
             *_findings(report), *_summary(report["models"]), *_data(report["data"], figures),
             *_results(report, figures),
             "<h2>How this report was made</h2>",
             _table(["argument", "value"], [[k, json.dumps(v)] for k, v in report["arguments"].items()]),
             f"<p class='small'>bgrepro, {report['seconds']} s. Every number is in <code>report.json</code> beside "
             "this page; the trained checkpoints are under <code>models/</code>.</p></body></html>"]
    return "\n".join(p for p in parts if p)


def _findings(report: dict) -> list[str]:
    """What the numbers say, model by model, and the criteria they follow from."""
    esc, parts = html.escape, ["<h2>What the numbers say</h2>"]
    for m in report["models"]:
        items = "".join(f"<li>{esc(f['text'])}" + (f" <i>What to do: {esc(f['advice'])}.</i>" if f.get("advice")
                                                    else "") + "</li>" for f in m.get("conclusion") or [])
        skipped = "".join(f"<li class='small'>{esc(x)}.</li>" for x in m.get("skipped") or [])
        parts.append(f"<p><b>{esc(m['name'])}</b></p><ul>{items}{skipped}</ul>")
    parts.append("<p class='small'>Each sentence follows from the numbers below by a criterion fixed beforehand: "
                 + esc("; ".join(f"{k}: {v}" for k, v in (report.get("criteria") or {}).items())) + ".</p>")
    return parts


def _summary(models: list[dict]) -> list[str]:
    """The headline numbers of every model in one table."""
    rows = []
    for m in models:
        spread = m["bg_gap"]["seeds"]
        rows.append([m["name"], _fmt(m["accuracy"].get(ORIGINAL)) + _interval(m["accuracy_ci95"].get(ORIGINAL)),
                     _fmt(m["bg_gap"]["value"]) + _interval(m["bg_gap"]["ci95"]),
                     "n/a" if not spread else f"{_fmt(spread['sd'])} ({len(spread['values'])} seeds)",
                     _fmt(m["challenge_accuracy"]), _fmt(m["foreground_share"])])
    return ["<h2>In one table</h2><p>The <b>BG-Gap</b> is the accuracy on Mixed-Same (each foreground on a "
            "background of its own class) minus that on Mixed-Rand (on a random class's background): how much the "
            "model loses when the background stops agreeing with the object. The <b>challenge accuracy</b> is the "
            "share of test foregrounds that no background of the test set turns into another class.</p>",
            _table(["model", "Original accuracy % [95%]", "BG-Gap, points [95%]", "BG-Gap sd over seeds",
                    "challenge accuracy %", "Grad-CAM share on foreground %"], rows)]


def _data(d: dict, figures: dict[str, str]) -> list[str]:
    """What was kept of the photos, what was left out and why, and one photo in the eight variants."""
    esc = html.escape
    rejected = ", ".join(f"{n} {r}" for r, n in d["rejected"].items()) or "none"
    per_split = ", ".join(f"{n} {s}" for s, n in d["kept_per_split"].items())
    return ["<h2>The data</h2>", f"<p class='warn'>{esc(d['masks_warning'])}</p>" if d.get("masks_warning") else "",
            f"<p>{d['images']} files among the photos, {d['kept']} kept ({per_split}); left out (by the paper's "
            f"filters, or not photos bgrepro reads): {esc(rejected)} (each one and why: "
            f"<code>{esc(d['rejections_file'])}</code>). Foreground masks: {esc(str(d['masks']))}. Split: "
            f"{esc(d['split'])}. Images brought to {d['size']} px (resize and centre crop, as the paper).</p>",
            _figure(figures, "variants", "One test photo in the eight variants of the paper.")]


def _results(report: dict, figures: dict[str, str]) -> list[str]:
    """Accuracy on every variant, the challenge, the fine-grained categories and Grad-CAM."""
    models = report["models"]
    variants = [v for v in NAMES if v in models[0]["accuracy"]]
    parts = ["<h2>Accuracy on every variant</h2>",
             _table(["model", *[title(v) for v in variants]],
                    [[m["name"], *[_fmt(m["accuracy"][v]) + _interval(m["accuracy_ci95"].get(v)) for v in variants]]
                     for m in models]),
             _figure(figures, "accuracy", "Accuracy per test set, 95% bootstrap intervals over test images (seaborn)."),
             _figure(figures, "bg_gap", "BG-Gap: bars with the paired 95% bootstrap interval over test images; dots "
                                        "are single seeds."),
             "<h2>The backgrounds challenge</h2><p>For every test foreground, each Only-BG-T test background is tried "
             "until one makes the model predict another class. What was tried: "
             f"{html.escape(report.get('challenge', {}).get('reading', 'every pair'))}.</p>",
             _figure(figures, "challenge", "Share of each class's foregrounds that some background fools."),
             *_groups(models, figures),
             "<h2>Is the background needed? (fine-grained)</h2><p>Each test image by what the model gets right: the "
             "foreground alone (Only-FG), the image, and the foreground on another class's background "
             "(Mixed-Rand).</p>",
             _figure(figures, "finegrained", "Share of test images in each category."),
             "<h2>Where the models look (Grad-CAM)</h2>",
             _table(["model", "share of saliency on the foreground %", "foreground area %"],
                    [[m["name"], _fmt(m["foreground_share"]), _fmt(m["mask_area"])] for m in models])]
    parts += [_figure(figures, f"saliency-{k}", f"Grad-CAM of {m['name']} (first seed) on test photos.")
              for k, m in enumerate(models)]
    return parts


def _groups(models: list[dict], figures: dict[str, str]) -> list[str]:
    """Mixed-Rand group by group: the heat map, the worst group and, per class, the background class that hurts
    it most."""
    matrices = [(m["name"], m["groups"][MIXED_RAND], m["worst_group"]) for m in models if MIXED_RAND in m["groups"]]
    if not matrices:
        return []
    small = matrices[0][1]["small_group"]
    parts = ["<h2>Which backgrounds hurt which classes</h2><p>Mixed-Rand's test images grouped by the class of "
             "their foreground and the class their background came from (the build's manifest records both): each "
             f"group's accuracy, with its 95% Wilson interval. Groups of fewer than {small} images are marked * "
             "and hatched; the worst group is chosen among the others.</p>",
             _figure(figures, "groups", "Accuracy (%) per foreground class (rows) and background class (columns) "
                                        "on Mixed-Rand; green is right, red wrong.")]
    for name, matrix, worst in matrices:
        rows = [[short_name(c), short_name(h["background"]) + (" *" if h["small"] else ""), _fmt(h["accuracy"]),
                 _fmt(h["own_accuracy"]), _fmt(h["drop"]), h["n"]]
                for c, h in matrix["hardest_background"].items() if h]
        parts += [f"<p><b>{html.escape(name)}</b>: worst group {html.escape(worst)}.</p>",
                  _table(["foreground class", "most harmful background class", "accuracy %",
                          "on its own class's backgrounds (Mixed-Same) %", "drop, points", "images"], rows)]
    return parts


__all__ = ["render_html"]
