"""Citations in the code point into this repository's docs, and every cited section exists.

Code comments cite the numbered sections of docs/semantics.md and docs/formats.md as `semantics <S>N` or
`formats <S>N` (<S> the section sign; `docs/semantics.md <S>N` also works), and further sections of the
same document may follow: `semantics <S>5.7, <S>6` or `semantics <S>5.1-<S>5.6` (docs/README.md). This
test parses the documents' headings, checks each citation in src/, tests/, benchmarks/, README.md and
Makefile against them, and fails on a citation of the original's spec (which lives outside the
repository) and on a bare section sign that names no document. The section sign is written as an escape
here so that this file's own patterns are not taken for citations.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
SECTION = "\u00a7"

SCANNED = ("src", "tests", "benchmarks")
SCANNED_FILES = ("README.md", "Makefile")
TEXT_SUFFIXES = {".py", ".js", ".mjs", ".ts", ".html", ".css", ".md", ".yaml", ".yml", ".toml", ".cfg", ".txt",
                 ".sh", ".json"}
SKIPPED_DIRS = {"vendor", "node_modules", "__pycache__", ".pytest_cache", "fixtures"}

_NUM = r"\d+(?:\.\d+)*"
_REF = r"\u00a7\s*(" + _NUM + r")"
# A citation: the document, its first section, then more sections of the same document.
CITATION = re.compile(r"(?:docs/)?\b(semantics|formats)(?:\.md)?\s+" + _REF
                      + r"((?:\s*(?:,|-|\u2013|and|or)\s*\u00a7\s*" + _NUM + r")*)")
MORE = re.compile(_REF)
# Section signs that are not ours: standards cited by number.
FOREIGN = re.compile(r"\bRFC\s*\d+\s*\u00a7\s*" + _NUM)
# What points outside the repository: the original's spec files and the bare "spec <S>N" form.
OUT_OF_REPO = re.compile(r"\bspec\s*\u00a7|\b(?:HRM|TRM)_SPEC\b|shared[/\\]spec", re.IGNORECASE)
HEADING = re.compile(r"^#+\s+\u00a7(" + _NUM + r")\b", re.MULTILINE)


def doc_sections() -> dict[str, set[str]]:
    """{'semantics': {'1', '2', '2.1', ...}, 'formats': {...}}: the numbered headings of docs/*.md."""
    return {path.stem: set(HEADING.findall(path.read_text(encoding="utf-8"))) for path in sorted(DOCS.glob("*.md"))}


def check_text(text: str, sections: dict[str, set[str]], *, allow_bare: bool = False) -> list[str]:
    """Problems in one file's text: out-of-repo citations, unknown documents or sections, bare section signs."""
    problems = []
    line = lambda pos: text.count("\n", 0, pos) + 1  # noqa: E731
    for match in OUT_OF_REPO.finditer(text):
        problems.append(f"line {line(match.start())}: cites the out-of-repo spec ({match.group(0)!r})")
    covered = set()
    for match in CITATION.finditer(text):
        doc = match.group(1)
        cited = [match.group(2)] + MORE.findall(match.group(3))
        for number in cited:
            if number not in sections.get(doc, set()):
                problems.append(f"line {line(match.start())}: {match.group(0)!r}: docs/{doc}.md has no "
                                f"{SECTION}{number}")
        covered.update(range(match.start(), match.end()))
    for match in FOREIGN.finditer(text):
        covered.update(range(match.start(), match.end()))
    if not allow_bare:
        for match in re.finditer(SECTION, text):
            if match.start() not in covered:
                snippet = text[max(0, match.start() - 30): match.start() + 10].replace("\n", " ")
                problems.append(f"line {line(match.start())}: a section sign that names no docs file: {snippet!r}")
    return problems


def scanned_files() -> list[Path]:
    files = [REPO / name for name in SCANNED_FILES if (REPO / name).is_file()]
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*")):
            if not path.is_file() or SKIPPED_DIRS.intersection(path.relative_to(REPO).parts):
                continue
            if path.suffix in TEXT_SUFFIXES or path.name == "Makefile":
                files.append(path)
    return files


def test_the_docs_have_numbered_sections():
    sections = doc_sections()
    assert {"semantics", "formats"} <= set(sections)
    assert {"1", "11.1", "14.2"} <= sections["semantics"] and {"1", "2.1", "6.2"} <= sections["formats"]


def test_every_citation_in_the_repo_points_into_docs_and_exists():
    sections = doc_sections()
    problems = []
    for path in scanned_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        problems += [f"{path.relative_to(REPO)}: {p}" for p in check_text(text, sections)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", ["semantics.md", "formats.md"])
def test_the_docs_cross_references_exist(name):
    """Inside a document a bare section sign means that document; `semantics <S>N` names the other one."""
    sections = doc_sections()
    text = (DOCS / name).read_text(encoding="utf-8")
    problems = check_text(text, sections, allow_bare=True)
    own = sections[Path(name).stem]
    body = HEADING.sub("", text)
    spans = [range(m.start(), m.end()) for m in CITATION.finditer(body)]
    for match in MORE.finditer(body):
        if not any(match.start() in span for span in spans) and match.group(1) not in own:
            problems.append(f"{SECTION}{match.group(1)} (bare, so in {name}) does not exist")
    assert not problems, "\n".join(problems)


def test_docs_readme_cites_existing_sections():
    sections = doc_sections()
    text = (DOCS / "README.md").read_text(encoding="utf-8")
    # The README names the spec the docs were written from, and its table has a column of spec sections.
    problems = [p for p in check_text(text, sections, allow_bare=True) if "out-of-repo" not in p]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("text, expected", [
    ("the eval loop (spec \u00a78.6)", "out-of-repo"),
    ("see ../shared" + "/spec/HRM" + "_SPEC.md", "out-of-repo"),     # split so that this file cites neither
    ("see TRM" + "_SPEC \u00a73", "out-of-repo"),
    ("the eval loop (semantics \u00a799)", "has no"),
    ("layers (semantics \u00a75.1-\u00a75.99)", "has no"),
    ("datasets (handbook \u00a71)", "names no docs file"),
    ("as \u00a710.1 says", "names no docs file"),
])
def test_the_checker_catches(text, expected):
    problems = check_text(text, doc_sections())
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("text", [
    "the eval loop (semantics \u00a711.1)",
    "(docs/semantics.md \u00a79.2)",
    "(formats \u00a71, \u00a72)",
    "ARC (formats \u00a72, semantics \u00a712)",
    "the layers of semantics \u00a75.2-\u00a75.6",
    "as in semantics\n    \u00a77.3",
    "# RFC 9112 \u00a72.2: blank lines",
])
def test_the_checker_accepts(text):
    assert check_text(text, doc_sections()) == []
