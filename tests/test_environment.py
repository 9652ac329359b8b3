"""The conda route installs what pip's does: environment.yml names every dependency of pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: conda's names for packages whose pip name differs
CONDA_NAMES = {"torch": "pytorch"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_names_every_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        wanted |= {_name(r) for r in extra}
    listed = set()
    for line in (ROOT / "environment.yml").read_text().splitlines():
        item = re.match(r"\s*-\s+(.+)", line)
        if item and not item.group(1).startswith(("-e", "pip:")) and item.group(1) != "pip":
            listed.add(_name(item.group(1)))
    missing = {n for n in wanted if CONDA_NAMES.get(n, n) not in listed}
    assert not missing, f"environment.yml lacks {sorted(missing)}"
    assert "-e ." in (ROOT / "environment.yml").read_text()  # the package itself


def test_the_pages_workflow_runs_the_readmes_commands_and_publishes_the_book():
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    steps = workflow["jobs"]["build"]["steps"]
    commands = [s["run"] for s in steps if "run" in s]
    assert commands == ["make test", "make reproduce"]
    readme = (ROOT / "README.md").read_text()
    assert all(f"{c}   #" in readme or f"{c} " in readme for c in commands)  # the README's two commands
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "book/_build/html"
    assert "BGREPRO_REPOSITORY_URL" in workflow["jobs"]["build"]["env"]
    assert workflow["jobs"]["deploy"]["steps"][0]["uses"].startswith("actions/deploy-pages")
