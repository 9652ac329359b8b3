"""The book: every chapter executes under the tiny profile with papermill, with figures and no errors.

When $BGREPRO_BOOK_OUT is set (`make test` sets it), the executed notebooks are left there so that
the site can be built from these very executions and checked in a browser.
"""

from __future__ import annotations

import json
import os
import shutil

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
    assert page_problems("p", f"<main>{figure}<table><tr><td>\u2014</td></tr></table></main>", "0") == []
    bare = '<main><div class="cell_output"><img src="_images/b.png"></div></main>'
    assert page_problems("p", f"<main>{figure}</main>{bare}", "0") == ["p: 1 figure(s) without a numbered caption"]
    assert page_problems("p", f"<main>{figure}<td>NaN</td></main>", "0") == ["p: NaN shown where a number is missing"]
    assert page_problems("p", f"<main>{figure}<pre>x = float('NaN')</pre></main>", "0") == []  # code is not output
    assert page_problems("p", f"<main>{figure}</main>", "2") == [
        "p: 2 table(s) wider than the page at 1280 px (columns hidden or scrolled)"]
    assert page_problems("p", "<main><p>text</p></main>", "0") == ["p: no figure"]
    # a chapter with nothing to run on (the real-photo chapter without photos) says so in a box instead
    assert page_problems("p", "<main><div class='admonition warning chapter-not-run'>no photos</div></main>", "0") == []


@pytest.mark.skipif(not any(shutil.which(b) for b in ("chromium", "chromium-browser")), reason="no Chromium")
def test_the_book_check_measures_tables_inside_scroll_containers(tmp_path):
    """A table wider than the page hides its last columns whether it sticks out of the page or sits in a
    container that scrolls (as the theme wraps outputs): the check counts both, in the browser, at 1280 px."""
    from bgrepro.book.runner import check_site

    figure = ('<figure><img src="_images/a.png"><figcaption><span class="caption-number">Fig. 1 </span>'
              '</figcaption></figure>')
    wide = "<table><tr>" + "".join(f"<td>column {k} with a long heading</td>" for k in range(40)) + "</tr></table>"
    narrow = "<table><tr><td>1</td><td>2</td></tr></table>"
    pages = {"scrolled": f"<div style='overflow-x:auto'>{wide}</div>", "bare": wide, "fits": narrow,
             "wrapped": "<div style='overflow-x:auto'><table style='width:100%;table-layout:fixed'><tr>"
                        + "".join(f"<td>word {k}</td>" for k in range(8)) + "</tr></table></div>"}
    for name, body in pages.items():
        (tmp_path / f"{name}.html").write_text(f"<html><body><main style='max-width:800px'>{figure}{body}</main>"
                                               "</body></html>")
    problems = check_site(tmp_path, tmp_path / "shots", tuple(pages))
    assert sorted(p for p in problems if "wider" in p) == [
        "bare: 1 table(s) wider than the page at 1280 px (columns hidden or scrolled)",
        "scrolled: 1 table(s) wider than the page at 1280 px (columns hidden or scrolled)"]


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
