"""The repository stands alone: no file points a reader at a path outside it, and every
docs/ page a comment or page names exists."""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Generated, installed or ignored: not the project's own files.
SKIPPED_DIRS = {".git", ".venv", "var", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", "results"}
TEXT_SUFFIXES = {".py", ".md", ".txt", ".toml", ".cfg", ".ini", ".env", ".html", ".json", ".yml", ".yaml", ""}
# A path that leaves the checkout: a sibling directory, or the machine's own layout.
OUTSIDE = re.compile(r"\.\./(?:shared|research|seed)\b|/work/|/home/|/Users/")
DOC_NAME = re.compile(r"docs/([a-z0-9-]+\.md)")


def project_files() -> list[Path]:
    files = []
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
        # A worktree's .git is a file naming the main checkout: git's, not the project's.
        files.extend(Path(folder) / name for name in names
                     if Path(name).suffix in TEXT_SUFFIXES and name not in (".git", Path(__file__).name))
    return files


def test_no_file_refers_to_a_path_outside_the_repository():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in project_files()
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def test_every_docs_page_named_anywhere_exists():
    missing = sorted({
        f"{path.relative_to(ROOT)} names docs/{name}"
        for path in project_files()
        for name in DOC_NAME.findall(path.read_text(encoding="utf-8", errors="replace"))
        if not (ROOT / "docs" / name).exists()
    })
    assert missing == []


def test_the_docs_index_lists_every_page():
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"README.md"}
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    assert {page for page in pages if f"]({page})" not in index} == set()
