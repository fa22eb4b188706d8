"""The docs as a newcomer uses them: every command they show exists and answers --help from a
fresh clone, no development machine's path appears in them, every relative link resolves, and
the pages stay short enough to read (README.md under 130 lines, docs/*.md under 1,000 lines
without the journal)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
BENCHMARK_OUTPUTS = sorted((REPO / "docs" / "benchmarks").glob("*.json"))

#: A command as the docs show it: python (any path to it) running a stage or benchmark script,
#: python -m a module of the package, or the package's console script.
SCRIPT = re.compile(r"(?<![\w/.-])(?:[\w./-]*/)?python3?\s+((?:stages|benchmarks)/\w+\.py)\b")
MODULE = re.compile(r"(?<![\w/.-])(?:[\w./-]*/)?python3?\s+-m\s+(elmo_imdb(?:\.\w+)*)\b")
CONSOLE = re.compile(r"(?<![\w\[.-])(?:[\w./-]*/)?(elmo-imdb)(?=\s+[a-z-])")

#: Paths of a development machine. ``.venv`` is the clone's own virtual environment, fine as
#: ``.venv/bin/...`` in a command, nowhere else.
MACHINE_PATH = re.compile(r"(?<![\w.])(/work/|/tmp/|/home/|/root/)\S*|\.venv(?!/bin/)")

#: The raw benchmark outputs are kept as the scripts wrote them (but for the provenance older
#: scripts did not write, which ``provenance_added`` names), and two record their command with
#: the paths of the machine they ran on. These, and only these, are known; any other path in a
#: raw output fails.
KNOWN_IN_RAW_OUTPUTS = {
    ("embed_scaling.json", "/work/real/data/prepared/test.h5"),
    ("embed_scaling.json", "/work/real/data/bilm"),
    ("embed_scaling_fullsize.json", "/work/real/data/prepared/test.h5"),
    # taken under load beside a `make repro`: the archive, a scratch prepared split, main's params
    ("pretrain_profile.json", "/tmp/speed-data/prepared"),
    ("pretrain_profile.json", "/tmp/speed-data/profile_main2.json"),
    ("pretrain_profile.json", "/work/main/params.yaml"),
    ("pretrain_profile.json", "/work/shared/data/aclImdb_v1.tar.gz"),
    ("pretrain_throughput_ab_2026-12-07.json", "/tmp/speed-data/prepared"),
    ("pretrain_throughput_ab_2026-12-07.json", "/tmp/speed-data/ab_final.json"),
    ("pretrain_throughput_ab_2026-12-07.json", "/work/shared/data/aclImdb_v1.tar.gz"),
}


def code_of(markdown: str) -> list[str]:
    """The text of every fenced block and inline code span of ``markdown``."""
    fenced = re.findall(r"^ *```[^\n]*\n(.*?)^ *```", markdown, flags=re.S | re.M)
    prose = re.sub(r"^ *```[^\n]*\n.*?^ *```", "", markdown, flags=re.S | re.M)
    inline = re.findall(r"`([^`]+)`", prose)
    return fenced + [" ".join(span.split()) for span in inline]  # an inline span may wrap lines


def commands_in(markdown: str) -> set[tuple[str, str]]:
    """``(kind, target)`` of every command the markdown's code shows: ``("script",
    "stages/embed.py")``, ``("module", "elmo_imdb.features")``, ``("console", "elmo-imdb")``."""
    found = set()
    for code in code_of(markdown):
        found |= {("script", m) for m in SCRIPT.findall(code)}
        found |= {("module", m) for m in MODULE.findall(code)}
        found |= {("console", m) for m in CONSOLE.findall(code)}
    return found


def machine_paths_in(text: str) -> list[str]:
    return [m.group(0) for m in MACHINE_PATH.finditer(text)]


def all_commands() -> dict[tuple[str, str], list[str]]:
    """Every command of README.md and docs/**/*.md, with the pages that show it."""
    where: dict[tuple[str, str], list[str]] = {}
    for page in PAGES:
        for command in commands_in(page.read_text()):
            where.setdefault(command, []).append(page.relative_to(REPO).as_posix())
    return where


def help_command(kind: str, target: str) -> list[str]:
    if kind == "script":
        return [sys.executable, target, "--help"]
    return [sys.executable, "-m", "elmo_imdb" if kind == "console" else target, "--help"]


def test_the_extractor_finds_commands_in_code_and_nowhere_else():
    sample = (
        "Run `python stages/embed.py --help`, or\n\n```\nPYTHONPATH=. .venv/bin/python benchmarks/epoch_costs.py --reviews 5\n"
        "python -m elmo_imdb.features verify data/elmo_imdb\n.venv/bin/elmo-imdb predict run \"text\"\n```\n\n"
        "Prose about python stages/not_code.py, `pip install 'elmo-imdb[cluster]'` and a `python\n  stages/train.py` that wraps.\n"
    )
    assert commands_in(sample) == {
        ("script", "stages/embed.py"), ("script", "benchmarks/epoch_costs.py"), ("script", "stages/train.py"),
        ("module", "elmo_imdb.features"), ("console", "elmo-imdb"),
    }
    assert commands_in("no code here: python stages/fetch.py") == set()


def test_the_docs_show_the_commands_a_newcomer_needs():
    commands = all_commands()
    assert ("console", "elmo-imdb") in commands and ("script", "benchmarks/publish_results.py") in commands
    assert ("script", "benchmarks/epoch_costs.py") in commands and ("module", "elmo_imdb") in commands


@pytest.mark.parametrize("command", sorted(all_commands()), ids=lambda c: c[1])
def test_every_command_in_the_docs_exists(command):
    kind, target = command
    if kind == "script":
        assert (REPO / target).is_file(), f"{target}, shown in {all_commands()[command]}, does not exist"
    elif kind == "module":
        path = REPO / Path(*target.split("."))
        main = path / "__main__.py" if path.is_dir() else path.with_suffix(".py")
        assert main.is_file(), f"python -m {target}, shown in {all_commands()[command]}: no {main.relative_to(REPO)}"
    else:
        assert f'{target} = "elmo_imdb.__main__:main"' in (REPO / "pyproject.toml").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(all_commands()), ids=lambda c: c[1])
def test_every_command_in_the_docs_answers_help_from_the_clone(command):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(help_command(*command), cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(help_command(*command)[1:])}: exit {result.returncode}\n{result.stderr[-2000:]}"
    assert "usage:" in result.stdout


def test_the_path_check_tells_machine_paths_from_the_clones_own():
    assert machine_paths_in("`/work/main/.venv/bin/python -m pytest`") == ["/work/main/.venv/bin/python"]
    assert machine_paths_in("creates .venv, then") == [".venv"]
    assert machine_paths_in("see /tmp/ray/logs and /home/me/x") == ["/tmp/ray/logs", "/home/me/x"]
    assert machine_paths_in("`.venv/bin/python -m pytest`, `source .venv/bin/activate`, data/bilm, ../shared/x") == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_page_names_a_machine_path(page):
    assert machine_paths_in(page.read_text()) == []


@pytest.mark.parametrize("output", BENCHMARK_OUTPUTS, ids=lambda p: p.name)
def test_no_raw_benchmark_output_names_an_unknown_machine_path(output):
    json.loads(output.read_text())  # a raw output, as the script wrote it
    found = {(output.name, path.rstrip('",')) for path in machine_paths_in(output.read_text())}
    assert found <= KNOWN_IN_RAW_OUTPUTS, sorted(found - KNOWN_IN_RAW_OUTPUTS)


@pytest.mark.parametrize("output", BENCHMARK_OUTPUTS, ids=lambda p: p.name)
def test_every_raw_benchmark_output_names_its_command_commit_cpu_and_date(output):
    results = json.loads(output.read_text())
    assert SCRIPT.match(results.get("command", "")), "no `python benchmarks/<script>.py ...` command"
    assert re.match(r"[0-9a-f]{7}", results.get("commit", "")), "no commit"
    assert re.match(r"\d{4}-\d\d-\d\d", results.get("date", "")), "no date"
    assert (results.get("machine") or {}).get("cpu"), "no CPU (`unknown (not recorded)` where it was not)"


def anchors_of(markdown: str) -> set[str]:
    """GitHub's anchors of the headings of ``markdown``."""
    markdown = re.sub(r"^ *```.*?^ *```", "", markdown, flags=re.S | re.M)
    anchors = set()
    for heading in re.findall(r"^#+ +(.+?) *$", markdown, flags=re.M):
        anchors.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return anchors


def test_anchors_are_githubs():
    assert anchors_of("# A title\n## The default 24 M tokens, 2026-12-03\n### `embed.published` (x)\n") == {
        "a-title", "the-default-24-m-tokens-2026-12-03", "embedpublished-x"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_resolves(page):
    text = re.sub(r"^ *```.*?^ *```", "", page.read_text(), flags=re.S | re.M)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors_of(file.read_text()):
            broken.append(target)
    assert broken == []


def line_count(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_the_line_counts_stay_readable():
    docs = {p.name: line_count(p) for p in (REPO / "docs").glob("*.md") if p.name != "journal.md"}
    assert sum(docs.values()) < 1000, docs
    assert line_count(REPO / "README.md") < 130
