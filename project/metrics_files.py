"""prometheus_client's multiprocess directory: emptied when a kind of process starts.

Without Django, so gunicorn's master (gunicorn.conf.py) can call it before it loads the app.
Each kind of process (web, worker) has a directory of its own (PROMETHEUS_MULTIPROC_DIR), so
one starting never empties another's; /metrics adds them up (project/metrics.py).
"""

import os
import shutil
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def reset_multiproc_dir(path: str | os.PathLike | None = None) -> Path | None:
    """Empty (or create) the directory before the processes that write to it start: files left
    by the processes of an earlier run would be added up with the new ones for ever."""
    path = path or os.environ.get(MULTIPROC_ENV)
    if not path:
        return None
    directory = Path(path)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory
