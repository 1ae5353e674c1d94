"""Housekeeping of the multiprocess metrics directory, done by gunicorn's master when a worker exits.

prometheus_client keeps a dead worker's counter and histogram files so totals never go
down; with ``max_requests`` recycling workers, those files would pile up, and every
scrape reads them all. Each is folded into one archive file per kind instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import multiprocess
from prometheus_client.mmap_dict import MmapedDict

#: The kinds of file whose values add up across processes.
_SUMMED = ("counter", "histogram")


def worker_exited(pid: int, directory: str) -> None:
    """Drop a dead worker's live gauges (prometheus_client's own step) and archive its counts."""
    multiprocess.mark_process_dead(pid, directory)
    for kind in _SUMMED:
        fold_into_archive(Path(directory) / f"{kind}_{pid}.db", Path(directory) / f"{kind}_archive.db")


def fold_into_archive(dead: Path, archive: Path) -> None:
    """Add a dead worker's values to the archive's, key by key, then remove its file.

    The new archive is written aside and renamed into place; only the master writes it.
    A scrape in the instant between the rename and the removal counts that worker twice.
    """
    if not dead.exists():
        return
    totals: dict[str, float] = {}
    for source in (archive, dead):
        if source.exists():
            for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(source)):
                totals[key] = totals.get(key, 0.0) + value
    aside = archive.with_name(archive.name + ".new")  # not *.db: scrapes do not read it
    merged = MmapedDict(str(aside))
    try:
        for key, value in totals.items():
            merged.write_value(key, value, 0.0)
    finally:
        merged.close()
    os.replace(aside, archive)
    dead.unlink()
