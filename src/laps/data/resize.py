"""``laps data resize``: re-encode a dataset once so that training reads it fast.

Every video is decoded, scaled to a short side (never up), and written as H.264 (yuv420p, no
audio) with a key frame at least every :data:`KEYFRAME_INTERVAL` frames, so that a random clip
seeks to a key frame close to its window instead of decoding up to 250 frames (x264's default
interval) it will not use. Between the reference frames go three B-frames nothing refers to,
which the reader skips unless they are wanted, and by default the stream is made cheap to decode
(x264's ``fastdecode`` tune: CAVLC, no deblocking) at the price of larger files (see
:func:`encoder_options`). Files go to a ``.part`` name first and are renamed when complete, so an
interrupted run leaves no partial video under its final name, and a second run skips what is done.
Sources are only read.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from tqdm import tqdm

from laps.data.annotations import default_root, find_videos, load_annotations, resolve_path, save_classes
from laps.data.forked import worker_context
from laps.errors import DataError

#: default maximum key-frame interval, chosen by decoding random 8x8 clips of a 10 s 340x256 video
#: (see BENCHMARKS.md): shorter intervals decode no faster per byte, longer ones decode slower
KEYFRAME_INTERVAL = 16


def encoder_options(crf: int, keyframe_interval: int, fast_decode: bool) -> dict[str, str]:
    """libx264 options of a prepared video.

    Fixed groups of three B-frames that are never references (``b-pyramid=none``, ``b-adapt=0``):
    a clip that wants every 8th frame skips decoding most of them. ``fast_decode`` adds x264's
    ``fastdecode`` tune: measured on 8x8 clips, 1.7x the clips/s for 1.5x the file size at the
    same PSNR (BENCHMARKS.md).
    """
    options = {"crf": str(crf), "g": str(keyframe_interval), "threads": "1",
               "x264-params": "bframes=3:b-adapt=0:b-pyramid=none"}
    if fast_decode:
        options["tune"] = "fastdecode"
    return options


def resized_shape(width: int, height: int, short_side: int) -> tuple[int, int]:
    """``(width, height)`` with the short side scaled down to ``short_side`` (never up), aspect
    kept, both even (H.264 4:2:0)."""
    scale = min(1.0, short_side / min(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def resize_video(src: str | os.PathLike, dst: str | os.PathLike, short_side: int = 320,
                 keyframe_interval: int = KEYFRAME_INTERVAL, crf: int = 23, fast_decode: bool = True) -> None:
    """Re-encode one video (first video stream only) to ``dst``, written atomically; options:
    :func:`encoder_options`."""
    import av  # here, not at the top: the command line reads this module's defaults without PyAV

    from laps.data.decoding import check_file, open_container, video_stream
    from laps.data.reformat import reformat

    dst = Path(dst)
    part = dst.with_name(dst.name + ".part")
    dst.parent.mkdir(parents=True, exist_ok=True)
    check_file(Path(src))  # what is no video is named as `laps data check` names it
    with open_container(Path(src)) as source:
        stream = video_stream(source, src)
        stream.thread_type = "AUTO"
        width, height = resized_shape(stream.codec_context.width, stream.codec_context.height, short_side)
        rate = Fraction(stream.average_rate or stream.guessed_rate or 30).limit_denominator(1001)
        with av.open(str(part), "w", format="mp4") as target:
            out = target.add_stream("libx264", rate=rate, options=encoder_options(crf, keyframe_interval, fast_decode))
            out.width, out.height, out.pix_fmt = width, height, "yuv420p"
            # one encoder thread a process (the pool uses the cores), and the same file every run
            out.codec_context.thread_count, out.codec_context.thread_type = 1, "NONE"
            out.codec_context.time_base = 1 / rate
            for index, frame in enumerate(source.decode(stream)):
                frame = reformat(frame, "yuv420p", width, height)
                frame.pts, frame.time_base = index, 1 / rate  # constant frame rate
                target.mux(out.encode(frame))
            target.mux(out.encode())
    os.replace(part, dst)


def _convert(job: tuple[str, str, int, int, bool]) -> tuple[str, str | None]:
    """Resize one video -> (its source, None, or the reason it could not be resized in words)."""
    import av

    from laps.data.decoding import BrokenVideoError, av_reason

    src, dst, short_side, keyframe_interval, fast_decode = job
    try:
        resize_video(src, dst, short_side, keyframe_interval, fast_decode=fast_decode)
    except BrokenVideoError as err:
        return src, err.reason
    except av.error.FFmpegError as err:
        return src, f"corrupt video data ({av_reason(err)})"
    except (DataError, OSError, ValueError) as err:
        return src, f"{type(err).__name__}: {err}"
    return src, None


@dataclass
class ResizeReport:
    """What a :func:`resize_dataset` run did: counts, the sources it could not convert (path,
    reason), and the list file it wrote (list mode)."""

    converted: int = 0
    skipped: int = 0
    broken: list[tuple[str, str]] = field(default_factory=list)
    list_file: str | None = None


def _relative(path: str, root: str | os.PathLike) -> Path:
    """``path`` under ``root``, as an ``.mp4`` path relative to it; raises for one outside."""
    relative = Path(os.path.relpath(path, root))
    if relative.parts[:1] == ("..",):
        raise DataError(f"{path} lies outside the dataset root {root}; pass --root to a folder that holds every video")
    return relative.with_suffix(".mp4")


def _jobs_of_folder(src: Path, dst: Path) -> list[tuple[str, str]]:
    return [(str(p), str((dst / p.relative_to(src)).with_suffix(".mp4"))) for p in find_videos(src)]


def resize_dataset(src: str | os.PathLike, dst: str | os.PathLike, *, short_side: int = 320,
                   keyframe_interval: int = KEYFRAME_INTERVAL, fast_decode: bool = True, workers: int = 1,
                   root: str | None = None, fmt: str = "auto", progress: bool = True) -> ResizeReport:
    """Re-encode a folder (its tree mirrored under ``dst``) or the videos of an annotation file.

    List mode also writes ``dst/<list name>.txt`` (``path label`` lines, paths relative to
    ``dst``, the sources that could not be read left out) and ``dst/classes.json`` when the
    class names are known. Videos already converted are skipped.
    """
    src, dst = Path(src), Path(dst)
    if short_side < 2 or keyframe_interval < 1:
        raise DataError(f"short side ({short_side}) must be >= 2 and key-frame interval ({keyframe_interval}) >= 1")
    source_dir = (src if src.is_dir() else src.parent).resolve()
    if dst.resolve() == source_dir or (src.is_dir() and source_dir in dst.resolve().parents):
        raise DataError(f"{dst} is or lies in the source folder {src}; give an output folder outside it "
                        "(sources are never overwritten)")
    records = None
    if src.is_dir():
        jobs = _jobs_of_folder(src, dst)
    else:
        records = load_annotations(src, root, fmt)
        if any(r.start is not None or r.end is not None for r in records):
            raise DataError(f"{src}: records with a time window (untrimmed videos) are not supported; "
                            "resize the video folder instead")
        base = root if root is not None else default_root(src)
        jobs = [(resolve_path(base, r.path), str(dst / _relative(resolve_path(base, r.path), base))) for r in records]
    if any(os.path.abspath(a) == os.path.abspath(b) for a, b in jobs):
        raise DataError("an output would overwrite its source; give another output folder")
    report = ResizeReport()
    todo = [(a, b, short_side, keyframe_interval, fast_decode) for a, b in jobs if not os.path.exists(b)]
    report.skipped = len(jobs) - len(todo)
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=worker_context(max(1, workers))) as pool:
        for path, error in tqdm(pool.map(_convert, todo), total=len(todo), desc="resize", disable=not progress):
            if error is None:
                report.converted += 1
            else:
                report.broken.append((path, error))
    if records is not None:
        failed = {path for path, _ in report.broken}
        lines = [f"{Path(b).relative_to(dst).as_posix()} {r.label}" for r, (a, b) in zip(records, jobs) if a not in failed]
        report.list_file = str(dst / (src.stem + ".txt"))
        dst.mkdir(parents=True, exist_ok=True)
        Path(report.list_file).write_text("".join(line + "\n" for line in lines))
        if records.classes is not None:
            save_classes(dst / "classes.json", records.classes)
    return report
