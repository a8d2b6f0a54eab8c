"""The README's benchmark tables, each written by the command that has just made its run.

`make bench` writes between BENCH's markers in README.md, `make bench-load` between LOAD's: the
machine (CPU, cores, memory, PostgreSQL), the date (KST) and the commit, then one table of every
goal with its measured value and met/missed. Only a run for the record writes it (full length,
not --quick, not --only, default options): any other run prints what it would write instead, so
that no number in the README comes from another run or another machine. Every run writes the same
text to its summary file in benchmarks/results/.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.goals import HEADERS, Goal
from benchmarks.stack import PROJECT_DIR, RESULTS_DIR

README = PROJECT_DIR / "README.md"


@dataclass(frozen=True)
class Table:
    """Where one command's table goes: its markers in the README, and its summary file."""
    command: str
    begin: str
    end: str
    summary: Path


BENCH = Table("make bench", "<!-- bench:begin -->", "<!-- bench:end -->", RESULTS_DIR / "summary.md")
LOAD = Table("make bench-load", "<!-- bench-load:begin -->", "<!-- bench-load:end -->",
             RESULTS_DIR / "load-summary.md")


def commit() -> str:
    """The commit measured: HEAD, and whether tracked files differ from it (then the numbers are
    of code no commit holds). The README and the results are not code: a table written by an
    earlier run and not yet committed does not make the next run's code uncommitted."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=PROJECT_DIR, capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)README.md")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return f"{head} with uncommitted changes" if changed else head


def machine_line(info: dict[str, Any]) -> str:
    database = f"PostgreSQL {info['postgresql']}" if info.get("postgresql") else "SQLite (PostgreSQL unreachable)"
    return (f"{info.get('cpu_model') or 'CPU unknown'}, {info.get('nproc')} cores, "
            f"{info.get('memory_gib')} GiB memory, {database}, Python {info.get('python')}")


def section(goals: Sequence[Goal], *, info: dict[str, Any], when: datetime, commit: str, minutes: float,
            quick: bool = False, table: Table = BENCH) -> str:
    """The text between the markers: where and when it was measured, then the goals' table."""
    load = " ".join(info.get("loadavg_at_start") or ["?"])
    lines = [
        f"_Written by `{table.command}` (`benchmarks/readme_table.py`): do not edit by hand._",
        "",
        f"The run of {when:%Y-%m-%d %H:%M} KST at commit `{commit}` ({minutes:.0f} min). The machine: "
        f"{machine_line(info)}; load average at the start {load}."
        + (" **A --quick run (small samples): not for the record.**" if quick else ""),
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    lines += ["| " + " | ".join(_cell(value) for value in goal.row()) + " |" for goal in goals]
    return "\n".join(lines) + "\n"


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def replaced(readme: str, text: str, table: Table = BENCH) -> str:
    """`readme` with what lies between the table's markers replaced by `text`; the rest untouched."""
    begin, end = table.begin, table.end
    if readme.count(begin) != 1 or readme.count(end) != 1 or readme.index(begin) > readme.index(end):
        raise ValueError(f"the README needs exactly one {begin} followed by one {end}")
    head, rest = readme.split(begin)
    _, tail = rest.split(end)
    return f"{head}{begin}\n{text.strip(chr(10))}\n{end}{tail}"


def write(text: str, *, for_the_record: bool, readme: Path = README, table: Table = BENCH,
          summary: Path | None = None) -> str:
    """Write the summary file, and the README's table when the run is for the record; says what it did."""
    summary = summary or table.summary
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(text, encoding="utf-8")
    if not for_the_record:
        return (f"wrote {summary}; {readme.name} left alone (a --quick, --only or resized run is not for the "
                f"record). A full run would write between its markers:\n\n{text}")
    readme.write_text(replaced(readme.read_text(encoding="utf-8"), text, table), encoding="utf-8")
    return f"wrote {summary} and the table of {readme} between {table.begin} and {table.end}"
