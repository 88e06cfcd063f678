"""Progress of a long loop (training epochs, evaluation, feature extraction) on stderr.

A tqdm bar when stderr is a terminal (or a notebook). When it is not (SLURM, ``nohup``, CI,
``| tee``), a bar's carriage-return updates would fill the log, so progress is a plain log line
every ``every_s`` seconds instead, through the ``laps`` logger (which ``laps`` commands print to stderr).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm import tqdm

logger = logging.getLogger(__name__)


def interactive() -> bool:
    """Whether progress bars can redraw in place: stderr is a terminal, or this is a notebook."""
    return sys.stderr.isatty() or "ipykernel" in sys.modules


class LogProgress:
    """Iterate ``iterable`` like tqdm, but report as a plain log line every ``every_s`` seconds:
    ``epoch 2/10: batch 120/500 (24%), loss=1.234, ...`` with the latest :meth:`set_postfix`."""

    def __init__(self, iterable: Iterable, desc: str, total: int, initial: int = 0, every_s: float = 30.0) -> None:
        self.iterable, self.desc, self.total, self.done, self.every_s = iterable, desc, total, initial, every_s
        self.postfix: dict[str, Any] = {}
        self.last_line = time.perf_counter()

    def set_postfix(self, refresh: bool = False, **values: Any) -> None:
        self.postfix = values

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.done += 1
            now = time.perf_counter()
            if now - self.last_line >= self.every_s and self.done < self.total:
                self.last_line = now
                values = "".join(f", {key}={value}" for key, value in self.postfix.items())
                logger.info("%s: batch %d/%d (%.0f%%)%s", self.desc, self.done, self.total,
                            100 * self.done / max(self.total, 1), values)


def progress(iterable: Iterable, desc: str, total: int, *, enabled: bool, initial: int = 0,
             every_s: float = 30.0) -> tqdm | LogProgress:
    """A tqdm bar over ``iterable`` on a terminal, else a :class:`LogProgress` (both take
    ``set_postfix``); ``enabled=False`` reports nothing."""
    if enabled and not interactive():
        return LogProgress(iterable, desc, total, initial, every_s)
    return tqdm(iterable, desc=desc, total=total, initial=initial, leave=False, disable=not enabled,
                dynamic_ncols=True)
