"""What must never reach a log: a whole phone number or a secret.

The suite runs this over every log its processes wrote (tests/conftest.py, at the end of
the session), so a leak anywhere in web or worker output fails the run, not only where a
test happened to look.
"""

from collections.abc import Iterable
from pathlib import Path

from tenants.phones import PHONE_IN_TEXT

# Enough of the offending line to find it, with the leak itself cut out of the report.
_CONTEXT = 40


def leaks(paths: Iterable[Path], secrets: Iterable[str]) -> list[str]:
    """One line per leak: file, line number, what leaked and what stood before it."""
    secrets = [s for s in secrets if s]
    found = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                for match in PHONE_IN_TEXT.finditer(line):
                    found.append(f"{path.name}:{number}: a whole phone number after "
                                 f"{line[max(0, match.start() - _CONTEXT):match.start()]!r}")
                for secret in secrets:
                    if secret in line:
                        found.append(f"{path.name}:{number}: a secret after "
                                     f"{line[max(0, line.index(secret) - _CONTEXT):line.index(secret)]!r}")
    return found
