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
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

from .. import layout
from .inputs import identity

BOOK = Path(__file__).resolve().parents[2] / "book"
#: Execution order: each chapter after the ones whose records it reads (the introduction summarises all).
ORDER = ("datasets", "backgrounds_suffice", "bg_gap", "mixed_rand_training", "adversarial", "finegrained", "progress",
         "localization", "generator", "realphotos", "full_scale", "claims", "intro")
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
    return hashlib.sha256((text + _identity_apart(inputs, parameters)).encode()).hexdigest()


def _identity_apart(inputs: list[str], parameters: dict) -> str:
    """`inputs.identity` computed in a child process: reading what a chapter declares loads torch and the models'
    registry (600 MB), which this process would otherwise keep resident beside every chapter's kernel."""
    if not inputs:
        return identity(inputs, parameters)
    code = ("import json, sys; from bgrepro.book.inputs import identity; "
            "sys.stdout.write(identity(json.loads(sys.argv[1]), json.loads(sys.argv[2])))")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(inputs), json.dumps(parameters)],
                          capture_output=True, text=True)
    if done.returncode != 0:  # the child's last line is the error (an unknown input, an unreadable folder)
        raise ValueError((done.stderr.strip().splitlines() or ["reading the chapter's inputs failed"])[-1])
    return done.stdout


def execute(profile: str, data: Path, synth: Path, seed: int = 0, chapters: tuple[str, ...] = ORDER,
            out: Path | None = None, book: Path = BOOK, progress: bool = True,
            realphotos: Path | None = None, peaks: dict[str, dict[str, float]] | None = None) -> dict[str, float]:
    """Execute the chapters with papermill; returns seconds per chapter (0 for an unchanged one). `realphotos`: the
    real-photo chapter's folder of photos (default: the photos beside the checkout, when there); `peaks`, when
    given, receives each executed chapter's peak resident memory in MiB: "all", this process and its kernel
    together, and "largest", the largest process alone (`PeakMemory`)."""
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
        with PeakMemory() as memory:
            _run_chapter(source, out, takes).replace(target)
        stamp.write_text(digest)
        timings[name] = time.perf_counter() - t0
        if peaks is not None:
            peaks[name] = {"all": memory.peak_mib, "largest": memory.largest_mib}
    return timings


class PeakMemory:
    """The peak resident memory (MiB) of this process and every process under it together (a chapter's kernel and
    what it starts: `peak_mib`), and of the largest one alone (`largest_mib`, what `/usr/bin/time` reports as the
    maximum resident set), sampled every `interval` seconds on a thread while the block runs."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval, self.peak_mib, self.largest_mib = interval, 0.0, 0.0

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._done.wait(self.interval):
            sizes = []
            for proc in [me, *me.children(recursive=True)]:
                try:
                    sizes.append(proc.memory_info().rss / 2**20)
                except psutil.Error:  # the process ended between listing and reading
                    pass
            self.peak_mib = max(self.peak_mib, sum(sizes))
            self.largest_mib = max(self.largest_mib, *sizes)

    def __enter__(self) -> PeakMemory:
        import threading

        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


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
#: outputs in one) that holds more than it shows (the book check counts both); and the words of table headers the
#: browser broke inside (a word's characters on two lines, `Range.getClientRects`), where a line may end only at a
#: space or at a hyphen between two words of three letters or more (Mixed-|Rand, never Only-BG-|T or Origina|l: the
#: rule `chapter._header` lays headers out by).
_MEASURE_TABLES = """<script>window.addEventListener('load', () => {
  const main = document.querySelector('main') || document.body;
  const wide = [];
  for (const table of document.querySelectorAll('table')) {
    let limit = main.getBoundingClientRect().right + 1, hidden = false;
    for (let node = table.parentElement; node && node !== document.body; node = node.parentElement) {
      if (getComputedStyle(node).overflowX === 'visible') continue;
      limit = Math.min(limit, node.getBoundingClientRect().right + 1);
      if (node.scrollWidth > node.clientWidth + 1) hidden = true;
    }
    if (hidden || table.getBoundingClientRect().right > limit) {
      const number = table.querySelector('caption .caption-number');
      wide.push(number ? number.textContent.trim() : 'one without a caption');
    }
  }
  document.body.setAttribute('data-wide-tables', JSON.stringify(wide));
  const broken = [];
  for (const th of document.querySelectorAll('th')) {
    const texts = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
    for (let node = texts.nextNode(); node; node = texts.nextNode()) {
      for (const word of node.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, word.index);
        range.setEnd(node, word.index + word[0].length);
        const lines = new Set(Array.from(range.getClientRects()).filter(r => r.width > 0)
                                .map(r => Math.round(r.top)));
        if (lines.size < 2) continue;
        let top = null, inside = false;
        for (let k = 0; k < word[0].length; k++) {
          range.setStart(node, word.index + k);
          range.setEnd(node, word.index + k + 1);
          const box = range.getBoundingClientRect();
          if (box.width === 0) continue;
          if (top !== null && Math.abs(box.top - top) > box.height / 2
              && !(/[A-Za-z]{3}-$/.test(word[0].slice(0, k)) && /^[A-Za-z]{3}/.test(word[0].slice(k)))) inside = true;
          top = box.top;
        }
        if (inside) broken.push(word[0]);
      }
    }
  }
  document.body.setAttribute('data-broken-headers', JSON.stringify(broken));
});</script>"""

#: A word of the package's own (an identifier: letters or digits joined by an underscore), that a page must say in
#: the paper's words; a path, a repository or a file name (`val_0_00000.png`) is not one.
INTERNAL_NAME = re.compile(r"[A-Za-z0-9]_[A-Za-z0-9]")
#: A path of the machine that built the book: absolute (`/tmp/...`, `C:\\...`) or out of the checkout (`../shared`).
MACHINE_PATH = re.compile(r"(?<![\w.:/~-])(?:/[\w.@+-]+/[\w.@+/-]*|\.\./[\w.@+/-]*|[A-Za-z]:\\[\w.\\-]+)")


class PageText(HTMLParser):
    """A page's text as a reader sees it: `shown`, everything but the chapters' code cells (outputs and inline code
    included), and `prose`, what of it is words (no code, no math)."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
    SKIP = {"head", "script", "style", "svg", "template", "noscript"}

    def __init__(self, html_text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str | None]] = []
        self.shown_parts: list[str] = []
        self.prose_parts: list[str] = []
        self.feed(html_text)
        self.close()
        self.shown, self.prose = " ".join(self.shown_parts), " ".join(self.prose_parts)

    def handle_starttag(self, tag, attrs) -> None:
        if tag in self.VOID:
            return
        classes = (dict(attrs).get("class") or "").split()
        kind = ("skip" if tag in self.SKIP or "cell_input" in classes else
                "code" if tag in ("pre", "code", "kbd", "samp") else
                "math" if tag in ("math", "mjx-container") or "math" in classes else None)
        self.stack.append((tag, kind))

    def handle_endtag(self, tag) -> None:
        for k in range(len(self.stack) - 1, -1, -1):  # an element left open inside closes with its parent
            if self.stack[k][0] == tag:
                del self.stack[k:]
                return

    def handle_data(self, data) -> None:
        kinds = {kind for _, kind in self.stack}
        if "skip" in kinds:
            return
        self.shown_parts.append(data)
        if not kinds & {"code", "math"}:
            self.prose_parts.append(data)


def internal_names(prose: str) -> list[str]:
    """The package's own identifiers in a page's words (`INTERNAL_NAME`), each once, in order."""
    found = []
    for token in re.findall(r"[^\s,;()\[\]{}<>\"'\u201c\u201d\u2018\u2019]+", prose):
        token = token.strip(".:!?-")
        if (INTERNAL_NAME.search(token) and "/" not in token and "\\" not in token
                and not re.search(r"\.[A-Za-z][A-Za-z0-9]{0,4}$", token)):  # a file's name is its name
            found.append(token)
    return list(dict.fromkeys(found))


def page_problems(page: str, html_text: str, wide: list[str] | None = None,
                  broken: list[str] | None = None) -> list[str]:
    """What a rendered page must not show: no figure at all, a figure or a table without a numbered caption, NaN
    where a number is missing (an em dash is), a Python traceback, a table wider than the page (`wide`: their
    numbers), a table header broken inside a word (`broken`: the words; both measured in the browser), the package's
    identifiers instead of words, a path of the machine that built it."""
    problems = []
    images = re.findall(r'<img[^>]+src="[^"]*_images/', html_text)
    if not images and NOT_RUN not in html_text:
        problems.append(f"{page}: no figure")
    captioned = sum(len(re.findall(r'<img[^>]+src="[^"]*_images/', block))
                    for block in re.findall(r"<figure\b.*?</figure>", html_text, re.S)
                    if re.search(r'class="caption-number"[^>]*>\s*Fig', block))
    if captioned < len(images):
        problems.append(f"{page}: {len(images) - captioned} figure(s) without a numbered caption")
    tables = re.findall(r"<table\b.*?</table>", html_text, re.S)
    bare = [t for t in tables if not re.search(r"<caption\b[^>]*>\s*<span [^>]*class=[\"']caption-number[\"'][^>]*>"
                                               r"\s*Table\s+\d+", t)]
    if bare:
        problems.append(f"{page}: {len(bare)} table(s) without a numbered caption")
    text = re.sub(r"<(script|style)\b.*?</\1>", "", html_text, flags=re.S)
    text = re.sub(r"<pre\b.*?</pre>", "", text, flags=re.S)  # code, not outputs
    if re.search(r"(?<![\w.])NaN(?![\w])", re.sub(r"<[^>]+>", " ", text)):
        problems.append(f"{page}: NaN shown where a number is missing")
    outputs = " ".join(re.findall(r'<div class="cell_output[^"]*">(.*?)</div>\s*</div>', html_text, re.S))
    if "Traceback" in html_text and TRACEBACK.search(re.sub(r"<[^>]+>", "", outputs or html_text)):
        problems.append(f"{page}: a Python traceback in an output cell")
    if wide:
        problems.append(f"{page}: {len(wide)} table(s) wider than the page at 1280 px (columns hidden or scrolled): "
                        + ", ".join(wide))
    if broken:
        problems.append(f"{page}: table header(s) broken inside a word at 1280 px: {', '.join(broken)}")
    seen = PageText(html_text)
    names = internal_names(seen.prose)
    if names:
        problems.append(f"{page}: the package's names instead of words: {', '.join(names)}")
    paths = list(dict.fromkeys(MACHINE_PATH.findall(seen.shown)))
    if paths:
        problems.append(f"{page}: a path of the machine that built it: {', '.join(paths)}")
    return problems


def check_site(html: Path, shots: Path, pages: tuple[str, ...] = ("intro", "bg_gap", "adversarial"),
               browser: str | None = None) -> list[str]:
    """Open pages of the built site in headless Chromium, screenshot them, and list the problems
    (`page_problems`): no figure, a figure or a table without a numbered caption, NaN, a Python traceback, a table
    wider than the page or a table header broken inside a word (both measured in the browser at 1280 px by an
    injected script), the package's names instead of words, a path of the machine that built it."""
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
        probe.write_text(path.read_text().replace("</body>", _MEASURE_TABLES + "</body>"))
        try:
            # measured with the scrollbar a reader's window shows (hidden, it gave 15 px that a reader has not:
            # a table 7 px too wide passed)
            dom = subprocess.run([*common, "--window-size=1280,2400", "--virtual-time-budget=5000", "--dump-dom",
                                  probe.as_uri()], capture_output=True, text=True, timeout=120)
        finally:
            probe.unlink(missing_ok=True)
        subprocess.run([*common, "--hide-scrollbars", f"--screenshot={shots / f'{page}.png'}",
                        "--window-size=1280,2400", path.as_uri()], capture_output=True, timeout=120)
        wide = re.search(r'data-wide-tables="([^"]*)"', dom.stdout)
        broken = re.search(r'data-broken-headers="([^"]*)"', dom.stdout)
        problems += page_problems(page, dom.stdout, json.loads(unescape(wide.group(1))) if wide else None,
                                  json.loads(unescape(broken.group(1))) if broken else None)
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
        peaks: dict[str, dict[str, float]] = {}
        try:
            timings = execute(args.profile, args.data, args.synth, args.seed, tuple(args.chapters.split(",")),
                              realphotos=args.realphotos or None, peaks=peaks)
        except ChapterFailed as err:  # one line; the traceback is in the executed notebook it names
            print(f"python -m bgrepro.book run: error: {' '.join(str(err).split())}", file=sys.stderr)
            return 2
        for name, seconds in timings.items():
            ran = f"{seconds:.1f} s, peak {peaks[name]['all']:,.0f} MiB" if seconds else "unchanged"
            print(f"  {name:<22}{ran}")
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
