"""The README's benchmark table, written by `make bench` from the run it has just made.

Between BEGIN and END in README.md: the machine (CPU, cores, memory, PostgreSQL), the date (KST)
and the commit, then one table of every goal with its measured value and met/missed. Only a run
for the record writes it (every benchmark, full length, not --quick): a smoke or partial run
prints what it would write instead, so that no number in the README comes from another run or
another machine. Every run writes the same text to benchmarks/results/summary.md.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.goals import HEADERS, Goal
from benchmarks.stack import PROJECT_DIR, RESULTS_DIR

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
README = PROJECT_DIR / "README.md"
SUMMARY = RESULTS_DIR / "summary.md"


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
            quick: bool = False) -> str:
    """The text between the markers: where and when it was measured, then the goals' table."""
    load = " ".join(info.get("loadavg_at_start") or ["?"])
    lines = [
        "_Written by `make bench` (`benchmarks/readme_table.py`): do not edit by hand._",
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


def replaced(readme: str, text: str) -> str:
    """`readme` with what lies between the markers replaced by `text`; the rest untouched."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1 or readme.index(BEGIN) > readme.index(END):
        raise ValueError(f"the README needs exactly one {BEGIN} followed by one {END}")
    head, rest = readme.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{text.strip(chr(10))}\n{END}{tail}"


def write(text: str, *, for_the_record: bool, readme: Path = README, summary: Path = SUMMARY) -> str:
    """Write the summary file, and the README's table when the run is for the record; says what it did."""
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(text, encoding="utf-8")
    if not for_the_record:
        return (f"wrote {summary}; {readme.name} left alone (a --quick or --only run is not for the record). "
                f"A full run would write between its markers:\n\n{text}")
    readme.write_text(replaced(readme.read_text(encoding="utf-8"), text), encoding="utf-8")
    return f"wrote {summary} and the benchmark table of {readme}"
