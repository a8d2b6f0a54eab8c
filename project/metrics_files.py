"""prometheus_client's multiprocess directory: cleared of dead processes' files when a kind of
process starts.

Without Django, so gunicorn's master (gunicorn.conf.py) can call it before it loads the app.
Each kind of process (web, worker) has a directory of its own (PROMETHEUS_MULTIPROC_DIR); /metrics
adds them up (project/metrics.py).

Only the files of processes that are gone are removed (prometheus_client names each
`<kind>_<pid>.db`): a file of a live process is still being written through its memory map, and
removing it would make that process's later counts invisible. Two kinds of process that happen to
share a directory (a test run, a misconfiguration) therefore never erase each other.
"""

import os
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def reset_multiproc_dir(path: str | os.PathLike | None = None) -> Path | None:
    """Create the directory, or remove the files of processes no longer running from it: files
    left by an earlier run would be added up with the new ones for ever."""
    path = path or os.environ.get(MULTIPROC_ENV)
    if not path:
        return None
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for file in directory.glob("*.db"):
        pid = file.stem.rpartition("_")[2]
        if not (pid.isdigit() and _running(int(pid))):
            file.unlink(missing_ok=True)
    return directory


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, alive
    return True
