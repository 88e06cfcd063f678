"""``laps data prepare FORMAT ROOT OUT``: the lists of a raw dataset download, written once.

From the files a dataset ships with (its annotation files and its video folder under ``ROOT``)
this writes ``OUT/train.txt``, ``OUT/val.txt`` (and ``OUT/test.txt`` where the dataset labels one)
as ``path label`` lines, with paths relative to ``OUT``, and ``OUT/classes.json``. Videos the
annotations name but ``ROOT`` lacks are left out of the lists and listed in ``OUT/missing.txt``;
with ``check=True`` every video is also opened and decoded at both ends, and the unreadable ones
are left out too (``OUT/unreadable.txt``). Train with ``--data-root OUT --train-list train.txt
--val-list val.txt``.

The annotation files are read by :mod:`laps.data.annotations`; a malformed line stops with its file
and line number. Formats and where their annotation files are looked for (``annotations``
overrides the folder):

* ``kinetics`` (400/600/700): ``train.csv``, ``validate.csv`` (or ``val.csv``), ``test.csv`` in
  ``ROOT`` or ``ROOT/annotations``; videos ``youtube_id_start_end.mp4`` in the downloader's layouts.
* ``ssv2``: ``*train.json``, ``*validation.json`` and ``*labels.json`` in ``ROOT`` or
  ``ROOT/labels``; ``{id}.webm`` videos in ``ROOT`` or a sub-folder.
* ``ucf101``: ``trainlist0N.txt``, ``testlist0N.txt``, ``classInd.txt`` in ``ROOT/ucfTrainTestlist``
  or ``ROOT/../ucfTrainTestlist``; split ``N`` = 1, 2 or 3.
* ``hmdb51``: ``<class>_test_split<N>.txt`` in ``ROOT/testTrainMulti_7030_splits`` or
  ``ROOT/../testTrainMulti_7030_splits``; videos in ``ROOT/<class>/``.
* ``folder``: ``ROOT/<class>/<video>``; a seeded ``val_fraction`` of every class goes to val.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from laps.data.annotations import (
    Annotations,
    VideoRecord,
    load_classes,
    read_folder,
    read_hmdb51,
    read_kinetics_csv,
    read_ssv2,
    read_ucf101,
    resolve_path,
    save_classes,
)
from laps.errors import DataError

PREPARE_FORMATS = ("kinetics", "ssv2", "ucf101", "hmdb51", "folder")


@dataclass
class PrepareReport:
    """What :func:`prepare_dataset` wrote: videos per split, and the videos it left out."""

    written: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def _first(folders: Sequence[Path], patterns: Sequence[str]) -> Path | None:
    """The first file matching one of ``patterns`` in the first folder that has one."""
    for folder in folders:
        for pattern in patterns:
            found = sorted(folder.glob(pattern)) if folder.is_dir() else []
            if found:
                return found[0]
    return None


def _required(path: Path | None, what: str, folders: Sequence[Path]) -> Path:
    if path is None:
        raise DataError(f"no {what} in {' or '.join(str(f) for f in folders)}; pass --annotations DIR")
    return path


def _kinetics(root: Path, folders: list[Path]) -> dict[str, Annotations]:
    train = read_kinetics_csv(_required(_first(folders, ["train.csv"]), "train.csv", folders), root)
    splits = {"train": train}
    for name, patterns in (("val", ["validate.csv", "val.csv"]), ("test", ["test.csv"])):
        path = _first(folders, patterns)
        if path is not None and "label" in path.read_text(encoding="utf-8").partition("\n")[0]:
            splits[name] = read_kinetics_csv(path, root, train.classes)
    return splits


def _with_folder(annotations: Annotations, folder: str) -> Annotations:
    """Records with ``folder/`` put before their paths."""
    records = [VideoRecord(f"{folder}/{r.path}" if folder else r.path, r.label) for r in annotations]
    return Annotations(records, annotations.classes)


def _ssv2(root: Path, folders: list[Path]) -> dict[str, Annotations]:
    classes = load_classes(_required(_first(folders, ["*labels.json"]), "*labels.json", folders))
    train_file = _required(_first(folders, ["*train.json"]), "*train.json", folders)
    train = read_ssv2(train_file, classes)
    val = read_ssv2(_required(_first(folders, ["*validation.json"]), "*validation.json", folders), classes)
    if not train:
        raise DataError(f"{train_file}: no videos listed")
    probe = train[0].path
    video_dir = next((d for d in (root, *sorted(p for p in root.iterdir() if p.is_dir())) if (d / probe).exists()), root)
    folder = video_dir.relative_to(root).as_posix() if video_dir != root else ""
    return {"train": _with_folder(train, folder), "val": _with_folder(val, folder)}


def _ucf101(folders: list[Path], split: int) -> dict[str, Annotations]:
    train = read_ucf101(_required(_first(folders, [f"trainlist0{split}.txt"]), f"trainlist0{split}.txt", folders))
    test = read_ucf101(_required(_first(folders, [f"testlist0{split}.txt"]), f"testlist0{split}.txt", folders),
                       train.classes)
    return {"train": train, "val": test}


def _hmdb51(folders: list[Path], split: int) -> dict[str, Annotations]:
    any_file = _required(_first(folders, [f"*_test_split{split}.txt"]), f"*_test_split{split}.txt files", folders)
    return {"train": read_hmdb51(any_file, "train"), "val": read_hmdb51(any_file, "test")}


def _folder(root: Path, val_fraction: float, seed: int) -> dict[str, Annotations]:
    everything = read_folder(root)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in range(len(everything.classes)):
        videos = [r for r in everything if r.label == label]
        order = rng.permutation(len(videos))
        held = min(len(videos) - 1, round(val_fraction * len(videos))) if len(videos) > 1 else 0
        val += [videos[i] for i in sorted(order[:held])]
        train += [videos[i] for i in sorted(order[held:])]
    return {"train": Annotations(train, everything.classes), "val": Annotations(val, everything.classes)}


def read_raw_dataset(fmt: str, root: str | os.PathLike, annotations: str | os.PathLike | None = None, *,
                     split: int = 1, val_fraction: float = 0.2, seed: int = 0) -> dict[str, Annotations]:
    """The splits of a raw download -> ``{"train": ..., "val": ...[, "test": ...]}``, paths relative to ``root``."""
    root = Path(root)
    if fmt not in PREPARE_FORMATS:
        raise DataError(f"unknown dataset format {fmt!r}; choose one of {', '.join(PREPARE_FORMATS)}")
    if not root.is_dir():
        raise DataError(f"dataset root {root} is not a folder")
    if split not in (1, 2, 3):
        raise DataError(f"split must be 1, 2 or 3 (UCF101 and HMDB51 have three), got {split}")
    given = [Path(annotations)] if annotations else []
    if fmt == "kinetics":
        return _kinetics(root, given or [root, root / "annotations"])
    if fmt == "ssv2":
        return _ssv2(root, given or [root, root / "labels"])
    if fmt == "ucf101":
        return _ucf101(given or [root / "ucfTrainTestlist", root.parent / "ucfTrainTestlist"], split)
    if fmt == "hmdb51":
        return _hmdb51(given or [root / "testTrainMulti_7030_splits", root.parent / "testTrainMulti_7030_splits"], split)
    if not 0 < val_fraction < 1:
        raise DataError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    return _folder(root, val_fraction, seed)


def prepare_dataset(fmt: str, root: str | os.PathLike, out: str | os.PathLike, annotations: str | os.PathLike | None = None,
                    *, split: int = 1, val_fraction: float = 0.2, seed: int = 0, check: bool = False,
                    workers: int = 1) -> PrepareReport:
    """Write ``out``'s lists, ``classes.json`` and the reports of left-out videos (see the module)."""
    root, out = Path(root), Path(out)
    splits = read_raw_dataset(fmt, root, annotations, split=split, val_fraction=val_fraction, seed=seed)
    report = PrepareReport()
    out.mkdir(parents=True, exist_ok=True)
    for name, records in splits.items():
        present = []
        for record in records:
            if os.path.isfile(resolve_path(root, record.path)):
                present.append(record)
            else:
                report.missing.append(record.path)
        if check:
            from laps.data.check import check_dataset

            reasons = dict(check_dataset(present, root, workers=workers))  # resolved path -> reason
            report.unreadable += [(r.path, reasons[resolve_path(root, r.path)]) for r in present
                                  if resolve_path(root, r.path) in reasons]
            present = [r for r in present if resolve_path(root, r.path) not in reasons]
        base = os.path.relpath(root, out)
        lines = "".join(f"{Path(base, r.path).as_posix()} {r.label}\n" for r in present)
        (out / f"{name}.txt").write_text(lines)
        report.written[name] = len(present)
    save_classes(out / "classes.json", next(iter(splits.values())).classes)
    (out / "missing.txt").write_text("".join(f"{path}\n" for path in report.missing))
    if check:
        (out / "unreadable.txt").write_text("".join(f"{path}: {reason}\n" for path, reason in report.unreadable))
    return report
