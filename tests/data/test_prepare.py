"""``laps data prepare``: every format on tiny fabricated trees, with missing files, unreadable
files and malformed lines reported clearly."""

import json
from pathlib import Path

import pytest

from laps.cli import main
from laps.data.annotations import load_annotations, resolve_path
from laps.data.encoding import write_video
from laps.data.prepare import prepare_dataset
from laps.errors import DataError
from tests.helpers import index_frames


def _video(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, index_frames(4, 16, 16), 10)


def _lists(out: Path) -> dict[str, list[tuple[str, int]]]:
    """Each written list, read back as laps train reads it; every path must exist from ``out``."""
    lists = {}
    for split in ("train", "val", "test"):
        if (out / f"{split}.txt").exists():
            records = load_annotations(out / f"{split}.txt")
            assert all(Path(resolve_path(out, r.path)).is_file() for r in records)
            lists[split] = [(Path(r.path).name, r.label) for r in records]
    return lists


def test_kinetics_csvs_and_the_downloaders_layout(tmp_path):
    root = tmp_path / "k400"
    rows = ["label,youtube_id,time_start,time_end,split"]
    for label in ("abseiling", "air drumming"):
        for i in range(2):
            rows.append(f"{label},vid{label[0]}{i},{10 * i},{10 * i + 10},train")
            _video(root / "train" / label / f"vid{label[0]}{i}_{10 * i:06d}_{10 * i + 10:06d}.mp4")
    rows.append("abseiling,gone,0,10,train")  # listed, never downloaded
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    (root / "validate.csv").write_text("label,youtube_id,time_start,time_end,split\nair drumming,vida0,0,10,val\n")
    _video(root / "val" / "air drumming" / "vida0_000000_000010.mp4")
    (root / "test.csv").write_text("youtube_id,time_start,time_end,split\nx,0,10,test\n")  # unlabelled: no list
    report = prepare_dataset("kinetics", root, tmp_path / "out")
    assert report.written == {"train": 4, "val": 1} and report.missing == ["train/abseiling/gone_000000_000010.mp4"]
    assert json.loads((tmp_path / "out" / "classes.json").read_text()) == ["abseiling", "air drumming"]
    assert _lists(tmp_path / "out")["val"] == [("vida0_000000_000010.mp4", 1)]
    assert (tmp_path / "out" / "missing.txt").read_text() == "train/abseiling/gone_000000_000010.mp4\n"


def test_kinetics_malformed_line_names_its_file_and_line(tmp_path):
    root = tmp_path / "k400"
    root.mkdir()
    (root / "train.csv").write_text("label,youtube_id,time_start,time_end\nabseiling,a,zero,10\n")
    with pytest.raises(DataError, match=r"train.csv:2: expected label,youtube_id,time_start,time_end"):
        prepare_dataset("kinetics", root, tmp_path / "out")


def test_ssv2_json_labels_and_webm_videos_in_a_sub_folder(tmp_path):
    root = tmp_path / "ssv2"
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "something-something-v2-labels.json").write_text(
        json.dumps({"Pushing something from left to right": "0", "Pulling something": "1"}))
    train = [{"id": "1", "template": "Pushing [something] from left to right"}, {"id": "2", "template": "Pulling [something]"}]
    (root / "labels" / "something-something-v2-train.json").write_text(json.dumps(train))
    (root / "labels" / "something-something-v2-validation.json").write_text(json.dumps([{"id": "3", "template": "Pulling [something]"}]))
    for i in (1, 2):
        _video(root / "20bn-something-something-v2" / f"{i}.webm")
    report = prepare_dataset("ssv2", root, tmp_path / "out")
    assert report.written == {"train": 2, "val": 0} and report.missing == ["20bn-something-something-v2/3.webm"]
    assert _lists(tmp_path / "out")["train"] == [("1.webm", 0), ("2.webm", 1)]


def test_ucf101_split_files_beside_the_videos(tmp_path):
    videos, splits = tmp_path / "UCF-101", tmp_path / "ucfTrainTestlist"
    splits.mkdir()
    (splits / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    for split in (1, 2):
        (splits / f"trainlist0{split}.txt").write_text("ApplyEyeMakeup/v_a1.avi 1\nArchery/v_b1.avi 2\n")
        (splits / f"testlist0{split}.txt").write_text("Archery/v_b2.avi\n")
    for name in ("ApplyEyeMakeup/v_a1.avi", "Archery/v_b1.avi", "Archery/v_b2.avi"):
        _video(videos / name)
    report = prepare_dataset("ucf101", videos, tmp_path / "out", split=2)
    assert report.written == {"train": 2, "val": 1} and not report.missing
    assert _lists(tmp_path / "out") == {"train": [("v_a1.avi", 0), ("v_b1.avi", 1)], "val": [("v_b2.avi", 1)]}
    (splits / "trainlist03.txt").write_text("ApplyEyeMakeup/v_a1.avi one\n")
    (splits / "testlist03.txt").write_text("")
    with pytest.raises(DataError, match=r"trainlist03.txt:1: expected 'Class/video.avi \[1-based label\]'"):
        prepare_dataset("ucf101", videos, tmp_path / "out3", split=3)


def test_hmdb51_split_files(tmp_path):
    videos, splits = tmp_path / "hmdb51", tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    (splits / "brush_hair_test_split1.txt").write_text("a.avi 1\nb.avi 2\nc.avi 0\n")
    (splits / "cartwheel_test_split1.txt").write_text("d.avi 1\ne.avi 2\n")
    for name in ("brush_hair/a.avi", "brush_hair/b.avi", "cartwheel/d.avi"):
        _video(videos / name)
    report = prepare_dataset("hmdb51", videos, tmp_path / "out")
    assert report.written == {"train": 2, "val": 1} and report.missing == ["cartwheel/e.avi"]
    assert _lists(tmp_path / "out")["train"] == [("a.avi", 0), ("d.avi", 1)]


def test_folder_per_class_gets_a_seeded_val_split_and_check_leaves_out_unreadable_videos(tmp_path, capsys):
    root = tmp_path / "mine"
    for label in ("cats", "dogs"):
        for i in range(5):
            _video(root / label / f"{label}{i}.mp4")
    (root / "dogs" / "dogs9.mp4").write_bytes(b"not a video")
    out = tmp_path / "out"
    assert main(["data", "prepare", "folder", str(root), str(out), "--check", "--workers", "1"]) == 1
    printed = capsys.readouterr().out
    assert "BROKEN" in printed and "dogs9.mp4" in printed and "left out 0 missing, 1 unreadable" in printed
    lists = _lists(out)
    assert len(lists["train"]) == 8 and len(lists["val"]) == 2 and {label for _, label in lists["val"]} == {0, 1}
    assert all(name != "dogs9.mp4" for name, _ in lists["train"] + lists["val"])
    again = tmp_path / "again"
    prepare_dataset("folder", root, again)
    assert (again / "val.txt").read_text() == (out / "val.txt").read_text()  # the same seed, the same split
    other = prepare_dataset("folder", root, tmp_path / "other", seed=1)
    assert other.written["val"] == 2


def test_unknown_format_and_missing_annotations_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "root").mkdir()
    assert main(["data", "prepare", "ucf101", str(tmp_path / "root"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no trainlist01.txt in" in err and "--annotations DIR" in err and err.count("\n") == 1
