"""Documents the project points to are in the repository.

The README's links, and the design documents that code, configs and dataset notes cite
(``docs/evaluation.md``, ``docs/koopa.md``, ...), must resolve inside the checkout: a reference to a
note that only exists outside the repository is a dead end for every user. (``--help`` texts are
checked in ``tests/cli/test_cli_help.py``.)
"""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = [*(REPO / "forecasting").rglob("*.py"), *(REPO / "app").rglob("*.py"), *(REPO / "configs").rglob("*.yaml"),
           *(REPO / "datasets").rglob("*.md"), REPO / "README.md", *(REPO / "docs").glob("*.md")]
# Top-level documents under docs/ (results files are benchmark outputs and may be named before they exist).
DOC_PATH = re.compile(r"(?<![\w/.-])(docs/[A-Za-z_]+\.md)\b")
# An upper-case note name (README.md, EVALUATION.md, ...): must be a file of the repository.
UPPER_DOC = re.compile(r"(?<![\w/.-])([A-Z][A-Z0-9_]*\.md)\b")
MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+)")


def _repo_basenames() -> set[str]:
    skip = {".venv", ".git", "node_modules"}
    return {p.name for p in REPO.rglob("*.md") if not skip & set(p.relative_to(REPO).parts)}


def test_cited_documents_exist():
    basenames = _repo_basenames()
    problems = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(REPO)
        problems += [f"{rel}: {p}" for p in DOC_PATH.findall(text) if not (REPO / p).is_file()]
        problems += [f"{rel}: {n}" for n in UPPER_DOC.findall(text) if n not in basenames]
    assert not problems, "references to documents that are not in the repository:\n" + "\n".join(sorted(set(problems)))


def test_readme_links_resolve():
    readme = REPO / "README.md"
    links = [link for link in MARKDOWN_LINK.findall(readme.read_text(encoding="utf-8")) if "://" not in link]
    missing = [link for link in links if not (readme.parent / link).exists()]
    assert links and not missing, f"README links to missing files: {missing}"


def test_design_notes_are_in_docs():
    """The four notes the code cites, with the sections the code names."""
    expected = {"evaluation.md": ["Protocol 2", "pit_error", "crps"], "koopa.md": ["Forward pass", "Reference accuracy"],
                "scorevi.md": ["The algorithm as implemented", "How it is checked"], "design.md": ["Layers"]}
    for name, needles in expected.items():
        text = (REPO / "docs" / name).read_text(encoding="utf-8")
        assert all(n in text for n in needles), (name, [n for n in needles if n not in text])
