"""The book: every chapter executes under the tiny profile with papermill, with figures and no errors.

When $BGREPRO_BOOK_OUT is set (`make test` sets it), the executed notebooks are left there so that
the site can be built from these very executions and checked in a browser.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import pandas as pd
import pytest

from bgrepro.book.runner import BOOK, ORDER, execute
from tests.conftest import once


@pytest.fixture(scope="session")
def executed(tmp_path_factory, tiny_dataset, tiny_variants):
    return once("book", lambda: _execute(tmp_path_factory, tiny_dataset, tiny_variants))


def _execute(tmp_path_factory, tiny_dataset, tiny_variants):
    work = tmp_path_factory.mktemp("book")
    out = work / "notebooks"
    old = {k: os.environ.get(k) for k in ("BGREPRO_RESULTS",)}
    os.environ["BGREPRO_RESULTS"] = str(work / "results")
    cwd = os.getcwd()
    os.chdir(work)
    try:
        first = execute("tiny", tiny_variants, tiny_dataset, out=out, progress=False)
        second = execute("tiny", tiny_variants, tiny_dataset, out=out, progress=False)
    finally:
        os.chdir(cwd)
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    keep = os.environ.get("BGREPRO_BOOK_OUT")
    if keep:
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(out, keep)
    return out, first, second


def test_every_chapter_in_the_toc_is_executed(executed):
    out, first, _ = executed
    toc = (BOOK / "_toc.yml").read_text()
    for name in ORDER:
        assert f"file: {name}" in toc or name == "intro"
        assert (out / f"{name}.ipynb").exists()
    assert set(first) == set(ORDER)


@pytest.mark.parametrize("name", ORDER)
def test_chapter_has_figures_parameters_and_no_errors(executed, name):
    out, *_ = executed
    notebook = json.loads((out / f"{name}.ipynb").read_text())
    cells = notebook["cells"]
    defaults = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(defaults) == 1 and "remove-cell" in defaults[0]["metadata"]["tags"]  # the page shows what ran
    assert any("injected-parameters" in c.get("metadata", {}).get("tags", []) for c in cells)
    outputs = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    not_run = any("chapter-not-run" in "".join(o.get("data", {}).get("text/html", "")) for o in outputs)
    assert not_run or any("image/png" in o.get("data", {}) for o in outputs), f"{name}: no figure"
    assert not not_run or name == "realphotos"  # only the real-photo chapter may have nothing to run on
    injected = next(c for c in cells if "injected-parameters" in c["metadata"].get("tags", []))
    assert 'profile = "tiny"' in "".join(injected["source"])
    # the page reads as text, tables and figures: every code cell, the values that ran too, is collapsed (or removed)
    for cell in cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell["cell_type"] == "code":
            assert tags & {"hide-input", "remove-cell", "remove-input"}, "".join(cell["source"])[:80]


def test_second_run_reuses_the_executions(executed):
    _, first, second = executed
    assert all(seconds == 0 for seconds in second.values())
    assert sum(first.values()) > 0


def test_the_full_budget_counts_every_model_the_book_trains(executed):
    """The full-scale page's budget counts what the book trains (`chapter_models`): every seed and the generator
    study's models too. The tiny book's trained-model records, one per model trained, are the count it must match."""
    from bgrepro.profiles import chapter_models, get_profile

    out, *_ = executed
    planned = chapter_models(get_profile("tiny"))
    trained = list((out.parent / "results" / "records").glob("trained_model-*.json"))
    assert len(trained) == sum(len(models) for models in planned.values())
    assert len(planned["generator"]) == 3 * 2 * 3  # three strengths, two seeds, three models each


@pytest.mark.parametrize("name", ORDER)
def test_chapter_cells_are_calls_not_logic(name):
    """Chapters hold narrative, parameters and calls: no code cell beyond the parameters is longer than
    8 lines (logic belongs in the package)."""
    import re

    text = (BOOK / f"{name}.md").read_text()
    for cell in re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", text, re.S):
        if "parameters" in cell.split("\n", 1)[0]:
            continue
        cell = re.sub(r"\A---\n.*?\n---\n", "", cell, flags=re.S)  # the cell's options (tags, figure caption)
        code = [ln for ln in cell.splitlines() if ln.strip() and not ln.startswith(":tags:")]
        assert len(code) <= 8, f"{name}.md: a {len(code)}-line cell: {code[0]}"


def test_the_book_check_fails_a_page_a_reader_would_not_trust():
    from bgrepro.book.runner import page_problems

    figure = ('<figure class="align-default" id="fig-x"><img src="_images/a.png"><figcaption><p>'
              '<span class="caption-number">Fig. 3 </span><span class="caption-text">x</span></p></figcaption>'
              '</figure>')
    captioned = ('<table><caption><span class="caption-number">Table 1 </span><span class="caption-text">x</span>'
                 '</caption><tr><td>\u2014</td></tr></table>')
    assert page_problems("p", f"<main>{figure}{captioned}</main>", []) == []
    bare = '<main><div class="cell_output"><img src="_images/b.png"></div></main>'
    assert page_problems("p", f"<main>{figure}</main>{bare}", []) == ["p: 1 figure(s) without a numbered caption"]
    assert page_problems("p", f"<main>{figure}<td>NaN</td></main>", []) == ["p: NaN shown where a number is missing"]
    assert page_problems("p", f"<main>{figure}<pre>x = float('NaN')</pre></main>", []) == []  # code is not output
    assert page_problems("p", f"<main>{figure}</main>", ["Table 2", "Table 5"]) == [
        "p: 2 table(s) wider than the page at 1280 px (columns hidden or scrolled): Table 2, Table 5"]
    assert page_problems("p", "<main><p>text</p></main>", []) == ["p: no figure"]
    # a chapter with nothing to run on (the real-photo chapter without photos) says so in a box instead
    assert page_problems("p", "<main><div class='admonition warning chapter-not-run'>no photos</div></main>", []) == []


def test_the_book_check_fails_a_table_without_a_numbered_caption():
    from bgrepro.book.chapter import setup, table_html, words_table
    from bgrepro.book.runner import page_problems

    figure = ('<figure><img src="_images/a.png"><figcaption><span class="caption-number">Fig. 1 </span>'
              '</figcaption></figure>')
    frame = pd.DataFrame({"only_bg_t": [1.0]}, index=["original"])
    setup("tiny")
    numbered = table_html(frame, "Accuracy on Only-BG-T.") + words_table([{"a": "b"}], caption="Words.").data
    assert page_problems("p", f"<main>{figure}{numbered}</main>", []) == []
    assert re.findall(r"Table \d+", numbered) == ["Table 1", "Table 2"]  # numbered in the page's order
    for bare in (table_html(frame), words_table([{"a": "b"}]).data,  # no caption, or one without a number
                 "<table><caption>Accuracy</caption><tr><td>1</td></tr></table>"):
        assert page_problems("p", f"<main>{figure}{numbered}{bare}</main>", []) == [
            "p: 1 table(s) without a numbered caption"]


def test_the_book_check_fails_the_packages_names_and_the_machines_paths():
    """A page speaks the paper's words and names no path of the machine that built it; code, file names, repositories,
    links and a command a reader types may hold what they hold."""
    from bgrepro.book.runner import page_problems

    figure = ('<figure><img src="_images/a.png"><figcaption><span class="caption-number">Fig. 1 </span>'
              '</figcaption></figure>')

    def problems(body):
        return page_problems("p", f"<html><head><title>a_b</title></head><body><main>{figure}{body}</main></body>"
                                  "</html>", [])

    clean = ("<p>The small CNN, narrow (2 epochs) on Mixed-Rand; <code>bgrepro localize --backbone dino_resnet50"
             "</code>; the folder <code>data/variants-smoke</code>; val/00_dog/val_0_00000.png, mixed_rand.tar.gz, "
             "MadryLab/backgrounds_challenge, <a href='https://github.com/a/b_c'>the code</a>, 1/2 and and/or.</p>"
             "<div class='cell_input'><pre>data = \"/tmp/pytest-0/variants\"</pre></div>"
             "<span class='math'>x_i</span><script>var a_b = '/tmp/x/y';</script>")
    assert problems(clean) == []
    assert problems("<table><tr><th>smallcnn_narrow (1 epoch)</th><td>trained_model</td></tr></table>"
                    "<p>Mixed-Rand, mobilenet_v1_0.25_128_quant.</p>")[1:] == [
        "p: the package's names instead of words: smallcnn_narrow, trained_model, mobilenet_v1_0.25_128_quant"]
    assert problems("<p>Photos from /work/shared/realphotos/imagenet-val-227 and (../shared/realmodels); an output: "
                    "<pre>/tmp/pytest-0/variants0/tiny</pre> <code>C:\\Users\\me\\photos</code></p>") == [
        "p: a path of the machine that built it: /work/shared/realphotos/imagenet-val-227, ../shared/realmodels, "
        "/tmp/pytest-0/variants0/tiny, C:\\Users\\me\\photos"]
    assert problems("<p>x</p>") == []
    assert page_problems("p", f"<main>{figure}</main>", [], ["Original", "PxAP"]) == [
        "p: table header(s) broken inside a word at 1280 px: Original, PxAP"]


@pytest.mark.skipif(not any(shutil.which(b) for b in ("chromium", "chromium-browser")), reason="no Chromium")
def test_the_book_check_measures_tables_inside_scroll_containers(tmp_path):
    """A table wider than the page hides its last columns whether it sticks out of the page or sits in a
    container that scrolls (as the theme wraps outputs): the check counts both, in the browser, at 1280 px."""
    from bgrepro.book.runner import check_site

    figure = ('<figure><img src="_images/a.png"><figcaption><span class="caption-number">Fig. 1 </span>'
              '</figcaption></figure>')
    cells = "<tr>" + "".join(f"<td>column {k} with a long heading</td>" for k in range(40)) + "</tr></table>"
    wide, numbered = "<table>" + cells, ('<table><caption><span class="caption-number">Table 4 </span></caption>'
                                         + cells)
    narrow = "<table><tr><td>1</td><td>2</td></tr></table>"
    pages = {"scrolled": f"<div style='overflow-x:auto'>{wide}</div>", "bare": numbered, "fits": narrow,
             "wrapped": "<div style='overflow-x:auto'><table style='width:100%;table-layout:fixed'><tr>"
                        + "".join(f"<td>word {k}</td>" for k in range(8)) + "</tr></table></div>"}
    for name, body in pages.items():
        (tmp_path / f"{name}.html").write_text(f"<html><body><main style='max-width:800px'>{figure}{body}</main>"
                                               "</body></html>")
    problems = check_site(tmp_path, tmp_path / "shots", tuple(pages))
    assert sorted(p for p in problems if "wider" in p) == [
        "bare: 1 table(s) wider than the page at 1280 px (columns hidden or scrolled): Table 4",
        "scrolled: 1 table(s) wider than the page at 1280 px (columns hidden or scrolled): one without a caption"]


@pytest.mark.skipif(not any(shutil.which(b) for b in ("chromium", "chromium-browser")), reason="no Chromium")
def test_the_book_check_measures_headers_broken_inside_a_word(tmp_path):
    """In the browser at 1280 px: a header squeezed until a word breaks ("Origina|l", "Only-BG-|T") fails the check; one
    that wraps between words, or at a hyphen between words (Mixed-|Rand), does not; and the book's own tables
    (`table_html`) in a narrow column keep every word of their headers whole."""
    from bgrepro.book.chapter import setup, table_html
    from bgrepro.book.runner import check_site

    figure = ('<figure><img src="_images/a.png"><figcaption><span class="caption-number">Fig. 1 </span>'
              '</figcaption></figure>')

    def squeezed(text, em=3.5):
        return (f"<table style='table-layout:fixed;width:{em}em'><caption><span class='caption-number'>Table 1 </span>"
                f"</caption><tr><th style='overflow-wrap:anywhere'>{text}</th></tr></table>")

    setup("tiny")
    frame = pd.DataFrame([[1.0] * 9], columns=["original", "only_bg_t", "mixed_same", "mixed_rand", "mixed_next",
                                               "only_fg", "no_fg", "only_bg_b", "bg_gap"], index=["PxAP per class"])
    pages = {"anywhere": squeezed("Original"), "hyphen": squeezed("Only-BG-T"), "compound": squeezed("Mixed-Rand"),
             "words": squeezed("trained on Original", 6), "book": table_html(frame, "Accuracy per variant.")}
    for name, body in pages.items():
        (tmp_path / f"{name}.html").write_text(f"<html><body><main style='max-width:420px'>{figure}{body}</main>"
                                               "</body></html>")
    problems = check_site(tmp_path, tmp_path / "shots", tuple(pages))
    assert sorted(p for p in problems if "broken" in p) == [
        "anywhere: table header(s) broken inside a word at 1280 px: Original",
        "hyphen: table header(s) broken inside a word at 1280 px: Only-BG-T"]


def test_every_name_the_package_shows_has_words_for_a_reader():
    """Every profile setting, kind of experiment record, architecture and ImageNet model reads as words on a page
    (`chapter.label`), so a setting or a model added later cannot show its identifier."""
    from dataclasses import fields
    from pathlib import Path

    from bgrepro.book.chapter import label, number
    from bgrepro.profiles import Profile
    from bgrepro.registry import ARCHS, PACKAGED, PUBLISHED_FILES, SELF_SUPERVISED

    package = Path(__file__).resolve().parents[1] / "bgrepro"
    kinds = {k for f in package.rglob("*.py") for k in re.findall(r'cached\(\s*"(\w+)"', f.read_text())}
    models = [*ARCHS, *PACKAGED, *(Path(f).stem for f in PUBLISHED_FILES), *SELF_SUPERVISED]
    assert "trained_model" in kinds and "smallcnn_narrow" in models
    for name in [f.name for f in fields(Profile)] + sorted(kinds) + models:
        assert not re.search(r"[a-z0-9]_[a-z0-9]", label(name)), f"{name} -> {label(name)}"
    assert label("smallcnn_narrow (2 epochs)") == "small CNN, narrow (2 epochs)"
    assert number(("smallcnn_narrow", "resnet50")) == "small CNN, narrow; ResNet-50"  # a list of names stays readable
    assert number(("efficientnet_lite0", "mobilenet_v1_0.25_128_quant")) == (
        "EfficientNet-Lite0, MobileNet v1 0.25/128 (8-bit)")


def test_tables_speak_the_papers_names_not_the_packages():
    """A reader sees Mixed-Rand, BG-Gap and words, never `mixed_rand`, `bg_gap` or an index's key, also inside a
    parenthesis, in a MultiIndex and in the name of an index."""
    import pandas as pd

    from bgrepro.book.chapter import table_html

    frame = pd.DataFrame({"mixed_rand (on the fly)": [1.0, 2.0], "ci95 low": [0.5, 1.5]},
                         index=pd.MultiIndex.from_tuples([("only_bg_t", "bg_gap"), ("imagenet", "fg_mask")],
                                                         names=["split_2x2", None]))
    html = table_html(frame)
    for shown in ("Mixed-Rand (on the fly)", "95% interval, low", "Only-BG-T", "BG-Gap", "ImageNet",
                  "foreground masks", "split"):
        assert shown in html, shown
    for key in ("mixed_rand", "ci95", "only_bg_t", "bg_gap", "imagenet", "fg_mask", "split_2x2"):
        assert key not in html, key


def test_the_site_builds_from_these_executions_and_reads_whole_in_chromium(executed, tmp_path):
    """The site rendered from the executions above (`jupyter-book build`, nothing executed again) has every page,
    and every page opened in headless Chromium at 1280 px shows figures with numbered captions, no NaN, no
    traceback and no table wider than the page (`check_site`). With $BGREPRO_BOOK_OUT (`make test`) the site and
    the screenshots stay beside those notebooks for a person to look at."""
    from pathlib import Path

    from bgrepro.book.runner import build_site, check_site

    out, _, _ = executed
    keep = os.environ.get("BGREPRO_BOOK_OUT")
    site = Path(keep).parent if keep else tmp_path
    html = build_site("tiny", out, output=site)
    assert all((html / f"{name}.html").is_file() for name in ORDER) and (html / "index.html").is_file()
    if not any(shutil.which(b) for b in ("chromium", "chromium-browser")):
        pytest.skip("no Chromium (Debian: apt-get install chromium): the site is built, its pages not opened")
    assert check_site(html, site / "screenshots", ORDER) == []
