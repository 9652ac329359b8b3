"""The book: execute the chapters with papermill, build the Jupyter Book site, check it in a browser.

    python -m bgrepro.book run   --profile smoke --data data/variants-smoke --synth data/synth-smoke
    python -m bgrepro.book build --profile smoke          # render what was executed into book/_build/html
    python -m bgrepro.book check --html book/_build/html  # headless Chromium: figures, no tracebacks

Chapters are jupytext MyST-markdown notebooks in `book/`, each with a papermill `parameters` cell
(profile, data, synth, seed and its own knobs). `run` converts each to .ipynb and executes it in
dependency order into `results/<profile>/notebooks/` (the experiments inside reuse the cached
records under results/); a chapter whose source and parameters are unchanged since its last
successful execution (and the package's code) is not run again. `build` copies the book's configuration beside the
executed notebooks and runs `jupyter-book build` (no execution) with its output in `book/_build`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .. import layout
from .inputs import identity

BOOK = Path(__file__).resolve().parents[2] / "book"
#: Execution order: each chapter after the ones whose records it reads (the introduction summarises all).
ORDER = ("datasets", "backgrounds_suffice", "bg_gap", "mixed_rand_training", "adversarial", "finegrained", "progress",
         "localization", "realphotos", "full_scale", "claims", "intro")
#: Pages rendered as they are (no code).
STATIC = ("api",)


def notebooks_dir(profile: str, results: Path | None = None) -> Path:
    return (results or layout.results_dir()) / profile / "notebooks"


def declared(notebook) -> set[str]:
    """The names a chapter's `parameters` cell assigns (what papermill may pass it)."""
    return {line.split("=")[0].strip() for cell in notebook.cells if cell.cell_type == "code" and "parameters" in
            cell.metadata.get("tags", []) for line in cell.source.splitlines() if "=" in line}


def _digest(source: Path, parameters: dict, inputs: list[str]) -> str:
    """Identity of one execution: the chapter, the parameters it takes, the package's code, the GPU measurements,
    and the identity of what its front matter declares it reads (`inputs.INPUTS`)."""
    code = "".join(p.read_text() for p in sorted(Path(__file__).resolve().parents[1].rglob("*.py")))
    measured = layout.GPU_RESULTS.read_text() if layout.GPU_RESULTS.exists() else ""
    text = source.read_text() + json.dumps(parameters, sort_keys=True) + code + measured
    return hashlib.sha256((text + identity(inputs, parameters)).encode()).hexdigest()


def execute(profile: str, data: Path, synth: Path, seed: int = 0, chapters: tuple[str, ...] = ORDER,
            out: Path | None = None, book: Path = BOOK, progress: bool = True,
            realphotos: Path | None = None) -> dict[str, float]:
    """Execute the chapters with papermill; returns seconds per chapter (0 for an unchanged one). `realphotos`: the
    real-photo chapter's folder of photos (default: the photos beside the checkout, when there)."""
    import jupytext

    out = out or notebooks_dir(profile)
    out.mkdir(parents=True, exist_ok=True)
    parameters = {"profile": profile, "data": str(data), "synth": str(synth), "seed": seed,
                  "realphotos": str(realphotos) if realphotos else ""}
    timings = {}
    for name in chapters:
        source = book / f"{name}.md"
        if not source.exists():
            raise FileNotFoundError(f"{source}: chapter not found")
        notebook = jupytext.read(source)
        takes = {k: v for k, v in parameters.items() if k in declared(notebook)}
        target, stamp = out / f"{name}.ipynb", out / f".{name}.sha256"
        digest = _digest(source, takes, notebook.metadata.get("bgrepro", {}).get("inputs", []))
        if target.exists() and stamp.exists() and stamp.read_text() == digest:
            timings[name] = 0.0
            continue
        if progress:
            print(f"[book] executing {name} ({profile})", flush=True)
        t0 = time.perf_counter()
        _run_chapter(source, out, takes).replace(target)
        stamp.write_text(digest)
        timings[name] = time.perf_counter() - t0
    return timings


class ChapterFailed(RuntimeError):
    """A chapter's cell raised: said in one line that names the cell, the error and the executed notebook."""


def _run_chapter(source: Path, out: Path, parameters: dict) -> Path:
    """One chapter executed by papermill into a hidden notebook beside its target (returned): its code one click
    away on the page, the parameters that ran shown collapsed, the parameters cell itself removed."""
    import jupytext
    import papermill

    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.setdefault("tags", [])
        if "parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")  # pages show the values that ran (papermill's injected cell)
        elif not {"remove-cell", "remove-input", "hide-input"} & set(tags):
            tags.append("hide-input")  # a page reads as text, tables and figures; code one click away
    raw, partial = out / f".{source.stem}.input.ipynb", out / f".{source.stem}.partial.ipynb"
    jupytext.write(notebook, raw, fmt="ipynb")
    saved = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # the kernel draws figures inline
    try:
        papermill.execute_notebook(str(raw), str(partial), parameters=parameters, kernel_name="python3",
                                   cwd=str(Path.cwd()), progress_bar=False, log_output=False,
                                   execution_timeout=3600)
    except papermill.PapermillExecutionError as err:
        raise ChapterFailed(f"{source}: chapter failed in cell {err.exec_count}: {err.ename}: {err.evalue} "
                           f"(the executed notebook with the traceback is {partial})") from None
    finally:
        raw.unlink(missing_ok=True)
        os.environ.pop("MPLBACKEND", None) if saved is None else os.environ.__setitem__("MPLBACKEND", saved)
    executed = json.loads(partial.read_text())
    for cell in executed["cells"]:  # the values that ran are one click away, as every other code cell
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if "injected-parameters" in tags and "hide-input" not in tags:
            tags.append("hide-input")
    partial.write_text(json.dumps(executed, indent=1))
    return partial


#: The repository the site's buttons point to (set by the Pages workflow; without it the site has none).
REPOSITORY_ENV = "BGREPRO_REPOSITORY_URL"


def site_config(config: Path, repository: str | None) -> str:
    """The book's _config.yml, with the repository, issue, download and launch (Binder, Colab) buttons when
    the repository the site is published from is known (a button to nowhere is worse than none)."""
    import yaml

    settings = yaml.safe_load(config.read_text())
    if repository:
        settings["repository"] = {"url": repository, "branch": "main", "path_to_book": "book"}
        settings.setdefault("html", {}).update(use_repository_button=True, use_issues_button=True,
                                               use_download_button=True)
        settings["launch_buttons"] = {"notebook_interface": "jupyterlab", "binderhub_url": "https://mybinder.org",
                                      "colab_url": "https://colab.research.google.com"}
    return yaml.safe_dump(settings, sort_keys=False)


def build_site(profile: str, executed: Path | None = None, book: Path = BOOK, output: Path | None = None) -> Path:
    """Render the executed notebooks (and the static pages) into `<output>/_build/html`."""
    executed = executed or notebooks_dir(profile)
    output = output or book
    missing = [n for n in ORDER if not (executed / f"{n}.ipynb").exists()]
    if missing:
        raise FileNotFoundError(f"{executed}: not executed yet: {', '.join(missing)} (run `make reproduce`)")
    for name in ("_toc.yml", "references.bib", *(f"{s}.md" for s in STATIC)):
        shutil.copy2(book / name, executed / name)
    (executed / "_config.yml").write_text(site_config(book / "_config.yml", os.environ.get(REPOSITORY_ENV)))
    cmd = [sys.executable, "-m", "jupyter_book", "build", str(executed), "--path-output", str(output)]
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent))
    if jb:
        cmd = [jb, "build", str(executed), "--path-output", str(output)]
    env = {**os.environ, "BGREPRO_BOOK_PROFILE": profile}
    subprocess.run(cmd, check=True, env=env)
    return output / "_build" / "html"


#: The class of the box a chapter shows instead of its results when it has nothing to run on (the real-photo
#: chapter without photos): such a page has no figure to show.
NOT_RUN = "chapter-not-run"
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|Error\w*: .*\n.*File \"")


#: Run in the page once it has loaded: how many tables a reader cannot see whole at the window's width, those
#: sticking out of the page's main column and those inside a scrolling or clipping container (the theme wraps
#: outputs in one) that holds more than it shows (the book check counts both).
_WIDE_TABLES = """<script>window.addEventListener('load', () => {
  const main = document.querySelector('main') || document.body;
  let wide = 0;
  for (const table of document.querySelectorAll('table')) {
    let limit = main.getBoundingClientRect().right + 1, hidden = false;
    for (let node = table.parentElement; node && node !== document.body; node = node.parentElement) {
      if (getComputedStyle(node).overflowX === 'visible') continue;
      limit = Math.min(limit, node.getBoundingClientRect().right + 1);
      if (node.scrollWidth > node.clientWidth + 1) hidden = true;
    }
    if (hidden || table.getBoundingClientRect().right > limit) wide += 1;
  }
  document.body.setAttribute('data-wide-tables', String(wide));
});</script>"""


def page_problems(page: str, html_text: str, measured: str | None = None) -> list[str]:
    """What a rendered page must not show: no figure at all, a figure without a numbered caption, NaN
    where a number is missing (an em dash is), a Python traceback, a table wider than the page."""
    problems = []
    images = re.findall(r'<img[^>]+src="[^"]*_images/', html_text)
    if not images and NOT_RUN not in html_text:
        problems.append(f"{page}: no figure")
    captioned = sum(len(re.findall(r'<img[^>]+src="[^"]*_images/', block))
                    for block in re.findall(r"<figure\b.*?</figure>", html_text, re.S)
                    if re.search(r'class="caption-number"[^>]*>\s*Fig', block))
    if captioned < len(images):
        problems.append(f"{page}: {len(images) - captioned} figure(s) without a numbered caption")
    text = re.sub(r"<(script|style)\b.*?</\1>", "", html_text, flags=re.S)
    text = re.sub(r"<pre\b.*?</pre>", "", text, flags=re.S)  # code, not outputs
    if re.search(r"(?<![\w.])NaN(?![\w])", re.sub(r"<[^>]+>", " ", text)):
        problems.append(f"{page}: NaN shown where a number is missing")
    outputs = " ".join(re.findall(r'<div class="cell_output[^"]*">(.*?)</div>\s*</div>', html_text, re.S))
    if "Traceback" in html_text and TRACEBACK.search(re.sub(r"<[^>]+>", "", outputs or html_text)):
        problems.append(f"{page}: a Python traceback in an output cell")
    if measured and measured != "0":
        problems.append(f"{page}: {measured} table(s) wider than the page at 1280 px (columns hidden or scrolled)")
    return problems


def check_site(html: Path, shots: Path, pages: tuple[str, ...] = ("intro", "bg_gap", "adversarial"),
               browser: str | None = None) -> list[str]:
    """Open pages of the built site in headless Chromium, screenshot them, and list the problems
    (`page_problems`): no figure, a figure without a numbered caption, NaN, a Python traceback, a table
    wider than the page (measured in the browser by an injected script)."""
    browser = browser or next((b for b in ("chromium", "chromium-browser", "google-chrome")
                               if shutil.which(b)), None)
    if browser is None:
        raise FileNotFoundError("no Chromium found (Debian: apt-get install chromium)")
    shots.mkdir(parents=True, exist_ok=True)
    problems = []
    for page in pages:
        path = (Path(html) / f"{page}.html").resolve()
        if not path.exists():
            problems.append(f"{path}: page missing")
            continue
        common = [browser, "--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update", "--no-first-run"]
        probe = path.with_name(f".check-{page}.html")  # beside the page, so its styles load as they do
        probe.write_text(path.read_text().replace("</body>", _WIDE_TABLES + "</body>"))
        try:
            # measured with the scrollbar a reader's window shows (hidden, it gave 15 px that a reader has not:
            # a table 7 px too wide passed)
            dom = subprocess.run([*common, "--window-size=1280,2400", "--virtual-time-budget=5000", "--dump-dom",
                                  probe.as_uri()], capture_output=True, text=True, timeout=120)
        finally:
            probe.unlink(missing_ok=True)
        subprocess.run([*common, "--hide-scrollbars", f"--screenshot={shots / f'{page}.png'}",
                        "--window-size=1280,2400", path.as_uri()], capture_output=True, timeout=120)
        measured = re.search(r'data-wide-tables="(\d+)"', dom.stdout)
        problems += page_problems(page, dom.stdout, measured.group(1) if measured else None)
        if not (shots / f"{page}.png").exists():
            problems.append(f"{page}: no screenshot")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bgrepro.book", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute the chapters with papermill")
    run.add_argument("--profile", default="smoke")
    run.add_argument("--data", type=Path, required=True)
    run.add_argument("--synth", type=Path, required=True)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--chapters", default=",".join(ORDER))
    run.add_argument("--realphotos", type=Path, default=None,
                     help="an ImageNet-style folder of photos (IN-9 class folders or ImageNet synset folders) for the "
                          "real-photo chapter (default: ../shared/realphotos/imagenet-val-227 when there)")
    build = sub.add_parser("build", help="render the executed chapters into book/_build/html")
    build.add_argument("--profile", default="smoke")
    build.add_argument("--executed", type=Path, default=None,
                       help="the executed notebooks (default: results/<profile>/notebooks)")
    build.add_argument("--output", type=Path, default=None,
                       help="the site goes to OUTPUT/_build/html (default: book)")
    check = sub.add_parser("check", help="screenshot pages in headless Chromium and check them")
    check.add_argument("--html", type=Path, default=BOOK / "_build" / "html")
    check.add_argument("--shots", type=Path, default=Path("results/screenshots"))
    check.add_argument("--pages", default="intro,bg_gap,adversarial",
                       help="comma-separated chapter names, or 'all' (default: the index and two chapters)")
    args = ap.parse_args(argv)
    if args.command == "run":
        if args.realphotos is not None:  # checked before any chapter runs: one line, exit 2
            from ..data.photos import check_photos

            try:
                check_photos(args.realphotos)
            except (FileNotFoundError, ValueError) as err:
                print(f"python -m bgrepro.book run: --realphotos {err}", file=sys.stderr)
                return 2
        t0 = time.perf_counter()
        try:
            timings = execute(args.profile, args.data, args.synth, args.seed, tuple(args.chapters.split(",")),
                              realphotos=args.realphotos or None)
        except ChapterFailed as err:  # one line; the traceback is in the executed notebook it names
            print(f"python -m bgrepro.book run: error: {' '.join(str(err).split())}", file=sys.stderr)
            return 2
        for name, seconds in timings.items():
            print(f"  {name:<22}{'unchanged' if seconds == 0 else f'{seconds:.1f} s'}")
        print(f"[book] executed in {time.perf_counter() - t0:.1f} s")
    elif args.command == "build":
        print(f"[book] site: {build_site(args.profile, args.executed, output=args.output)}/index.html")
    else:
        pages = ORDER if args.pages == "all" else tuple(args.pages.split(","))
        problems = check_site(args.html, args.shots, pages)
        for p in problems:
            print(f"[book check] {p}", file=sys.stderr)
        print(f"[book check] screenshots in {args.shots}; {len(problems)} problem(s)")
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
