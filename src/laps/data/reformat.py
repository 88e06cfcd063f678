"""Every conversion of a decoded frame (pixel format, size) in laps, made safe across fork.

The rule: every FFmpeg object a process uses is made in that process, and conversions run on one
thread (parallelism comes from the loader workers and process pools, one frame a process at a time).

Why: ``VideoFrame.reformat()`` and ``VideoFrame.to_ndarray(format=...)`` of PyAV 18.1 keep one
swscale context per thread in a module-level ``threading.local`` and let swscale pick its thread
count (``threads=0``: a pool of slice threads). A process forked after one such conversion (a
DataLoader worker, a process-pool worker) inherits that context but none of its threads, and its
first conversion waits for them forever: in ``sws_scale_frame`` -> ``avpriv_slicethread_execute``,
or, when the frame size or format changes, in ``sws_frame_setup`` -> ``avpriv_slicethread_free``
-> ``pthread_cond_destroy``. (PyAV 17.1 made a new context for every frame, so nothing survived
a fork.) Here each thread of each process makes its own :class:`~av.video.reformatter.VideoReformatter`
(one context, reused frame after frame) and converts with ``threads=1``, whatever the process that
forked this one converted before.
"""

from __future__ import annotations

import os
import threading

import av
import numpy as np
from av.video.reformatter import VideoReformatter

_local = threading.local()
#: reformatters a parent process made, inherited across fork: never freed here, since freeing a
#: context whose threads live only in the parent could wait for them forever
_inherited: list[VideoReformatter] = []


def _reformatter() -> VideoReformatter:
    """This thread's reformatter, made in this process."""
    pid = os.getpid()
    if getattr(_local, "pid", None) != pid:
        if hasattr(_local, "reformatter"):
            _inherited.append(_local.reformatter)
        _local.pid, _local.reformatter = pid, VideoReformatter()
    return _local.reformatter


def reformat(frame: av.VideoFrame, format: str, width: int | None = None, height: int | None = None) -> av.VideoFrame:
    """``frame`` in pixel ``format`` (e.g. ``"yuv420p"``), scaled to ``width`` x ``height``
    (default: its own size) with PyAV's default swscale filter, on this thread alone."""
    return _reformatter().reformat(frame, width=width, height=height, format=format, threads=1)


def to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as uint8 RGB ``(H, W, 3)``."""
    return reformat(frame, "rgb24").to_ndarray()
