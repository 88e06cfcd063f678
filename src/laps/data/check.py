"""Scan a dataset for broken videos in parallel (``laps data check``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing

from laps.data.annotations import VideoRecord, resolve_path
from laps.data.decoding import BrokenVideoError, open_video
from laps.data.forked import worker_context
from laps.errors import VideoDecodeError


def check_video(path: str, backend: str = "pyav", start: float | None = None, end: float | None = None) -> str | None:
    """None if the video opens and its first and last frames decode, else the reason it is broken."""
    try:
        with closing(open_video(path, backend, start, end)) as video:
            video.get([0])
            video.get([video.info.num_frames - 1])
    except VideoDecodeError as err:
        return err.reason if isinstance(err, BrokenVideoError) else str(err)
    return None


def _check_job(job: tuple[str, str, float | None, float | None]) -> str | None:
    return check_video(*job)


def check_dataset(
    records: Sequence[VideoRecord], root: str | os.PathLike, workers: int | None = None, backend: str = "pyav"
) -> list[tuple[str, str]]:
    """Check every record (``workers`` processes; default: all cores) -> [(path, reason)] of broken files."""
    jobs = [(resolve_path(root, r.path), backend, r.start, r.end) for r in records]
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        reasons = list(map(_check_job, jobs))
    else:
        with ProcessPoolExecutor(workers, mp_context=worker_context(workers)) as pool:
            reasons = list(pool.map(_check_job, jobs, chunksize=max(1, len(jobs) // (8 * workers))))
    return [(job[0], reason) for job, reason in zip(jobs, reasons, strict=True) if reason is not None]
