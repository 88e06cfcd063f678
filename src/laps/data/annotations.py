"""Annotation files -> :class:`VideoRecord` lists, and the ``classes.json`` class map.

Formats (``load_annotations(..., fmt=...)``; ``"auto"`` picks by name and content):

* ``list``: mmaction-style lines ``relative/path.mp4 label`` (space, tab or comma); a
  ``classes.json`` beside the list, if any, names the classes.
* ``kinetics``: CSV ``label,youtube_id,time_start,time_end[,split]``; files are
  ``{youtube_id}_{start:06d}_{end:06d}.mp4`` under ``split/label/``, ``label/`` or flat
  (the layout that exists under ``root`` is used).
* ``ucf101``: ``trainlist0N.txt`` (``Class/v_x.avi 1``, 1-based) or ``testlist0N.txt``
  (``Class/v_x.avi``), with ``classInd.txt`` beside them.
* ``hmdb51``: any ``<class>_test_split<N>.txt`` file; all classes of split N are read,
  ``subset`` picks train (1) or test (2) lines.
* ``ssv2``: Something-Something v2 ``train``/``validation`` JSON, with the labels JSON
  (``*labels.json``) beside it; ``[something]`` in templates matches ``something``.
* ``folder``: a directory with one sub-folder of videos per class (sorted names = labels).

Record paths are relative to a root directory (see :func:`default_root`) or absolute.
Every command finds a list or file it is given the same way (:func:`find_file`): as given, then
under the data root.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from laps.errors import DataError

VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp")
FORMATS = ("auto", "list", "kinetics", "ucf101", "hmdb51", "ssv2", "folder")
_LIST_LINE = re.compile(r"(?P<path>.+?)[\s,]+(?P<label>\d+)")


@dataclass
class VideoRecord:
    """One labelled video: ``path`` (absolute or relative to the dataset root), label index,
    and an optional ``start``/``end`` window in seconds for untrimmed files."""

    path: str
    label: int
    start: float | None = None
    end: float | None = None


class Annotations(list):
    """A ``list[VideoRecord]`` that also carries ``classes`` (names by label, or None if unknown)."""

    def __init__(self, records: Iterable[VideoRecord] = (), classes: Sequence[str] | None = None) -> None:
        super().__init__(records)
        self.classes = list(classes) if classes is not None else None


def find_videos(folder: str | os.PathLike) -> list[Path]:
    """The video files under ``folder`` (recursively; by :data:`VIDEO_SUFFIXES`), sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def find_file(name: str | os.PathLike, root: str | os.PathLike | None, option: str) -> Path:
    """A list or file given to ``option`` (``--list``, ``data.train_list``, ...): the path as given
    if it exists, else under ``root`` (the data root) if that exists. :class:`DataError` names both
    places it looked."""
    path = Path(name).expanduser()
    if path.exists():
        return path
    under = Path(root).expanduser() / path if root and not path.is_absolute() else None
    if under is not None and under.exists():
        return under
    places = f"{path.absolute()}" + (f" nor {under.absolute()}" if under is not None else " (no data root to look under)")
    raise DataError(f"{option} {name}: not found at {places}")


def default_root(path: str | os.PathLike) -> Path:
    """Where relative record paths start when no root is given: the folder itself or the file's folder."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def resolve_path(root: str | os.PathLike, path: str) -> str:
    """A record path joined to the dataset root (absolute record paths are kept)."""
    return os.path.join(root, path)


def save_classes(path: str | os.PathLike, names: Sequence[str]) -> None:
    """Write the class map as a JSON list: ``names[label]``."""
    Path(path).write_text(json.dumps(list(names), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def load_classes(path: str | os.PathLike) -> list[str]:
    """Read a class map: a JSON list of names, or a ``{name: index}`` dict (indices may be strings)."""
    data = _read_json(Path(path))
    if isinstance(data, list) and all(isinstance(name, str) for name in data):
        return data
    if isinstance(data, dict):
        try:
            by_index = {int(index): name for name, index in data.items()}
        except (TypeError, ValueError):
            by_index = {}
        if sorted(by_index) == list(range(len(data))):
            return [by_index[i] for i in range(len(data))]
    raise DataError(f"{path}: a class map must be a JSON list of names or a {{name: index}} dict with indices 0..K-1")


def _text(path: Path) -> str:
    """The UTF-8 text of an annotation file (DataError if it is missing or not text)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; check the path") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start}); "
                        "annotation files are text") from None


def _read_json(path: Path):
    try:
        return json.loads(_text(path))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: invalid JSON ({err.msg}); fix or regenerate the file") from None


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    """(line number, stripped line) for every non-blank, non-comment line."""
    for lineno, line in enumerate(_text(path).splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            yield lineno, line


def _class_index(classes: Sequence[str], name: str, where: str) -> int:
    try:
        return classes.index(name)
    except ValueError:
        raise DataError(f"{where}: class {name!r} is not in the class map; "
                        "use the class map this dataset was built with") from None


def _check_labels(records: Sequence[VideoRecord], classes: Sequence[str] | None, path: Path) -> None:
    if classes is not None:
        bad = [r for r in records if r.label >= len(classes)]
        if bad:
            raise DataError(f"{path}: label {bad[0].label} of {bad[0].path} is out of range for {len(classes)} classes")


def read_paths(path: Path) -> list[str]:
    """The video paths of a list file whose lines are ``path`` or ``path label`` (labels dropped)."""
    return [m["path"] if (m := _LIST_LINE.fullmatch(line)) else line for _, line in _lines(path)]


def read_list(path: Path, classes: Sequence[str] | None = None) -> Annotations:
    """mmaction-style ``path label`` lines; classes from ``classes`` or a ``classes.json`` beside the file."""
    records = []
    for lineno, line in _lines(path):
        match = _LIST_LINE.fullmatch(line)
        if not match:
            raise DataError(f"{path}:{lineno}: expected '<video path> <label>' (space, tab or comma), got {line!r}")
        records.append(VideoRecord(match["path"], int(match["label"])))
    if classes is None and (path.parent / "classes.json").exists():
        classes = load_classes(path.parent / "classes.json")
    _check_labels(records, classes, path)
    return Annotations(records, classes)


_KINETICS_LAYOUTS: tuple[Callable[[str, str], str], ...] = (
    lambda split, label: os.path.join(split, label),
    lambda split, label: os.path.join(split, label.replace(" ", "_")),
    lambda split, label: label,
    lambda split, label: label.replace(" ", "_"),
    lambda split, label: split,
    lambda split, label: "",
)


def read_kinetics_csv(path: Path, root: Path | None = None, classes: Sequence[str] | None = None) -> Annotations:
    """Kinetics CSV -> records; class names sorted unless ``classes`` is given; layout probed under ``root``."""
    try:
        rows = list(csv.reader(io.StringIO(_text(path), newline="")))
    except csv.Error as err:
        raise DataError(f"{path}: not a readable CSV file ({err})") from None
    header = [h.strip() for h in rows[0]] if rows else []
    needed = ("label", "youtube_id", "time_start", "time_end")
    if not set(needed) <= set(header):
        raise DataError(f"{path}:1: Kinetics CSV header must name {','.join(needed)}[,split], got {','.join(header)!r}")
    col = {name: header.index(name) for name in header}
    entries = []  # (label name, split, file name, line number)
    for lineno, row in enumerate(rows[1:], 2):
        if not row:
            continue
        try:
            label, youtube_id = row[col["label"]], row[col["youtube_id"]]
            start, end = int(float(row[col["time_start"]])), int(float(row[col["time_end"]]))
            split = row[col["split"]] if "split" in col else ""
        except (IndexError, ValueError):
            raise DataError(f"{path}:{lineno}: expected label,youtube_id,time_start,time_end[,split], "
                            f"got {','.join(row)!r}") from None
        entries.append((label, split, f"{youtube_id}_{start:06d}_{end:06d}.mp4", lineno))
    if classes is None:
        classes = sorted({label for label, *_ in entries})
    layout = _probe_layout(entries, root if root is not None else path.parent)
    records = [
        VideoRecord(os.path.join(layout(split, label), name), _class_index(classes, label, f"{path}:{lineno}"))
        for label, split, name, lineno in entries
    ]
    return Annotations(records, classes)


def _probe_layout(
    entries: Sequence[tuple[str, str, str, int]], root: Path, probes: int = 50
) -> Callable[[str, str], str]:
    """The Kinetics folder layout under which most of the first ``probes`` files exist (default: split/label)."""
    sample = entries[:probes]
    hits = [sum((root / layout(split, label) / name).exists() for label, split, name, _ in sample)
            for layout in _KINETICS_LAYOUTS]
    return _KINETICS_LAYOUTS[hits.index(max(hits))]


def read_ucf101(path: Path, classes: Sequence[str] | None = None) -> Annotations:
    """UCF101 ``trainlist``/``testlist`` file; classes from ``classInd.txt`` beside it (1-based)."""
    class_file = path.parent / "classInd.txt"
    if classes is None and class_file.exists():
        named = {}
        for lineno, line in _lines(class_file):
            index, _, name = line.partition(" ")
            if not index.isdigit() or not name:
                raise DataError(f"{class_file}:{lineno}: expected '<1-based index> <class name>', got {line!r}")
            named[int(index)] = name.strip()
        classes = [named[i] for i in sorted(named)]
    entries = []
    for lineno, line in _lines(path):
        parts = line.split()
        if len(parts) not in (1, 2) or (len(parts) == 2 and not parts[1].isdigit()) or "/" not in parts[0]:
            raise DataError(f"{path}:{lineno}: expected 'Class/video.avi [1-based label]', got {line!r}")
        entries.append((parts[0], int(parts[1]) - 1 if len(parts) == 2 else None, lineno))
    if classes is None:
        classes = sorted({video.split("/")[0] for video, _, _ in entries})
    records = [
        VideoRecord(video, _class_index(classes, video.split("/")[0], f"{path}:{lineno}") if label is None else label)
        for video, label, lineno in entries
    ]
    _check_labels(records, classes, path)
    return Annotations(records, classes)


_HMDB_SPLIT = re.compile(r"(?P<label>.+)_test_split(?P<split>\d+)\.txt")


def read_hmdb51(path: Path, subset: str = "train") -> Annotations:
    """HMDB51 split: ``path`` is any ``<class>_test_split<N>.txt``; reads every class of split N.

    Lines are ``video.avi 1|2|0`` (train / test / unused); records are ``<class>/video.avi``.
    """
    wanted = {"train": "1", "test": "2"}.get(subset)
    match = _HMDB_SPLIT.fullmatch(path.name)
    if wanted is None or match is None:
        raise DataError(f"{path}: HMDB51 needs a '<class>_test_split<N>.txt' file and subset 'train' or 'test', "
                        f"got {subset!r}")
    files = sorted(path.parent.glob(f"*_test_split{match['split']}.txt"))
    classes = [_HMDB_SPLIT.fullmatch(f.name)["label"] for f in files]
    records = []
    for label, split_file in enumerate(files):
        for lineno, line in _lines(split_file):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DataError(f"{split_file}:{lineno}: expected '<video.avi> <0|1|2>', got {line!r}")
            if parts[1] == wanted:
                records.append(VideoRecord(f"{classes[label]}/{parts[0]}", label))
    return Annotations(records, classes)


def read_ssv2(path: Path, classes: Sequence[str] | None = None, suffix: str = ".webm") -> Annotations:
    """Something-Something v2 split JSON (``[{"id", "template", ...}]``) -> ``{id}.webm`` records."""
    if classes is None:
        label_files = sorted(path.parent.glob("*labels.json"))
        if not label_files:
            raise DataError(f"{path}: no '*labels.json' beside it; pass the class names or add the labels file")
        classes = load_classes(label_files[0])
    entries = _read_json(path)
    if not isinstance(entries, list):
        raise DataError(f"{path}: expected a JSON list of {{'id', 'template'}} entries")
    records = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or "id" not in entry or "template" not in entry:
            raise DataError(f"{path}: entry {number} has no 'id' and 'template' "
                            "(the unlabelled test split cannot be trained on)")
        template = entry["template"].replace("[", "").replace("]", "")
        label = _class_index(classes, template, f"{path}: entry {number}")
        records.append(VideoRecord(f"{entry['id']}{suffix}", label))
    return Annotations(records, classes)


def read_folder(path: Path) -> Annotations:
    """Folder per class -> records of every video file below each class folder (sorted)."""
    classes = sorted(d.name for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    records = [
        VideoRecord(video.relative_to(path).as_posix(), label)
        for label, name in enumerate(classes)
        for video in find_videos(path / name)
    ]
    if not records:
        raise DataError(f"{path}: no class folders with videos ({', '.join(VIDEO_SUFFIXES)}); "
                        "expected <root>/<class>/<video>")
    return Annotations(records, classes)


def detect_format(path: Path) -> str:
    """The annotation format of ``path`` from its type, name and (for CSV) header."""
    if path.is_dir():
        return "folder"
    name = path.name.lower()
    if name.endswith(".csv"):
        return "kinetics" if "youtube_id" in _text(path).partition("\n")[0] else "list"
    if name.endswith(".json"):
        return "ssv2"
    if re.fullmatch(r"(train|test)list\d+\.txt", name):
        return "ucf101"
    if _HMDB_SPLIT.fullmatch(path.name):
        return "hmdb51"
    return "list"


def load_annotations(
    path: str | os.PathLike,
    root: str | os.PathLike | None = None,
    fmt: str = "auto",
    *,
    classes: Sequence[str] | None = None,
    subset: str = "train",
) -> Annotations:
    """Read any supported annotation file or folder -> :class:`Annotations` (records + class names).

    Args:
        root: dataset root (used to find the Kinetics folder layout); default: see :func:`default_root`.
        fmt: one of ``FORMATS``.
        classes: class names to label by (e.g. the training set's, for a validation file).
        subset: ``"train"`` or ``"test"``, for HMDB51 split files only.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: annotation file not found; check the path")
    if fmt not in FORMATS:
        raise DataError(f"unknown annotation format {fmt!r}; choose one of {', '.join(FORMATS)}")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "folder":
        if not path.is_dir():
            raise DataError(f"{path}: format 'folder' needs a directory with one sub-folder per class")
        return read_folder(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder; format {fmt!r} needs an annotation file")
    if fmt == "kinetics":
        return read_kinetics_csv(path, Path(root) if root is not None else None, classes)
    if fmt == "ucf101":
        return read_ucf101(path, classes)
    if fmt == "hmdb51":
        return read_hmdb51(path, subset)
    if fmt == "ssv2":
        return read_ssv2(path, classes)
    return read_list(path, classes)
