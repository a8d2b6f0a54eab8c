"""A goal as `make bench` reports it: what was measured, against which target, met or missed.

Each benchmark module has `goals(result) -> list[Goal]` beside its `run()` and `report()`, with its
targets as constants of its own; benchmarks/run_all.py prints them all as the run's summary and
benchmarks/readme_table.py writes the same rows into the README.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

HEADERS = ("goal", "measured", "target", "met")
NO_TARGET = "–"


@dataclass(frozen=True)
class Goal:
    name: str
    measured: str
    target: str = NO_TARGET
    # None: measured for the record, with no target to meet (e.g. the prune's rows per second).
    met: bool | None = None

    @property
    def verdict(self) -> str:
        if self.met is None:
            return NO_TARGET
        return "met" if self.met else "MISSED"

    def row(self) -> list[str]:
        return [self.name, self.measured, self.target, self.verdict]


def rows(goals: Iterable[Goal]) -> list[list[str]]:
    return [goal.row() for goal in goals]

