import json
import pickle
from pathlib import Path

import pytest

from laps.data.annotations import (
    VideoRecord,
    default_root,
    detect_format,
    load_annotations,
    load_classes,
    save_classes,
)
from laps.errors import DataError


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_list_with_any_separator_and_sibling_classes(tmp_path):
    path = write(tmp_path / "train.txt", "# comment\na/x.mp4 0\n\nb/my clip.mp4\t1\nc/z.mp4,2\n")
    save_classes(tmp_path / "classes.json", ["zero", "one", "two"])
    ann = load_annotations(path)
    assert list(ann) == [VideoRecord("a/x.mp4", 0), VideoRecord("b/my clip.mp4", 1), VideoRecord("c/z.mp4", 2)]
    assert ann.classes == ["zero", "one", "two"]
    assert pickle.loads(pickle.dumps(ann)).classes == ann.classes


@pytest.mark.parametrize("text, lineno", [("a.mp4 0\nb.mp4\n", 2), ("a.mp4 x\n", 1), ("a.mp4 0\n\nb.mp4 -1\n", 3)])
def test_list_malformed_line_names_file_and_line(tmp_path, text, lineno):
    path = write(tmp_path / "bad.txt", text)
    with pytest.raises(DataError, match=f"bad.txt:{lineno}: expected '<video path> <label>'"):
        load_annotations(path)


def test_list_label_out_of_class_range(tmp_path):
    path = write(tmp_path / "l.txt", "a.mp4 5\n")
    with pytest.raises(DataError, match="label 5 .* 2 classes"):
        load_annotations(path, classes=["a", "b"])


def test_class_map_round_trip_and_dict_form(tmp_path):
    save_classes(tmp_path / "classes.json", ["b", "a"])
    assert load_classes(tmp_path / "classes.json") == ["b", "a"]
    write(tmp_path / "dict.json", json.dumps({"x": 1, "y": "0"}))
    assert load_classes(tmp_path / "dict.json") == ["y", "x"]
    write(tmp_path / "gap.json", json.dumps({"x": 0, "y": 2}))
    with pytest.raises(DataError, match="indices 0..K-1"):
        load_classes(tmp_path / "gap.json")
    write(tmp_path / "broken.json", '["a",\n')
    with pytest.raises(DataError, match="broken.json:2: invalid JSON"):
        load_classes(tmp_path / "broken.json")


KINETICS = """label,youtube_id,time_start,time_end,split
abseiling,abc,12,22,train
air drumming,def,0,10,train
abseiling,ghi,100,110,train
"""


@pytest.mark.parametrize("layout, expected", [
    ("train/{label}/{name}", "train/air drumming/def_000000_000010.mp4"),
    ("{label_}/{name}", "air_drumming/def_000000_000010.mp4"),
    ("{name}", "def_000000_000010.mp4"),
])
def test_kinetics_csv_finds_the_layout(tmp_path, layout, expected):
    csv_path = write(tmp_path / "train.csv", KINETICS)
    root = tmp_path / "videos"
    for label, name in [("abseiling", "abc_000012_000022.mp4"), ("air drumming", "def_000000_000010.mp4")]:
        write(root / layout.format(label=label, label_=label.replace(" ", "_"), name=name), "x")
    ann = load_annotations(csv_path, root=root)
    assert ann.classes == ["abseiling", "air drumming"]
    assert [r.label for r in ann] == [0, 1, 0]
    assert ann[1].path == expected


def test_kinetics_malformed(tmp_path):
    with pytest.raises(DataError, match="k.csv:3: expected label,youtube_id"):
        load_annotations(write(tmp_path / "k.csv", KINETICS.replace("def,0,10", "def,zero,10")), fmt="kinetics")
    with pytest.raises(DataError, match="h.csv:1: Kinetics CSV header"):
        load_annotations(write(tmp_path / "h.csv", "label,id\nx,y\n"), fmt="kinetics")
    with pytest.raises(DataError, match="v.csv:2: class 'yoga'"):
        load_annotations(write(tmp_path / "v.csv", KINETICS.replace("abseiling,abc", "yoga,abc")),
                         classes=["abseiling", "air drumming"])


def test_ucf101_split_files(tmp_path):
    write(tmp_path / "classInd.txt", "1 ApplyEyeMakeup\n2 Archery\n")
    train = write(tmp_path / "trainlist01.txt", "ApplyEyeMakeup/v_A_g08_c01.avi 1\nArchery/v_B_g09_c02.avi 2\n")
    test = write(tmp_path / "testlist01.txt", "Archery/v_B_g01_c01.avi\n")
    assert detect_format(train) == detect_format(test) == "ucf101"
    assert [(r.path, r.label) for r in load_annotations(train)] == [("ApplyEyeMakeup/v_A_g08_c01.avi", 0),
                                                                    ("Archery/v_B_g09_c02.avi", 1)]
    ann = load_annotations(test)
    assert [(r.path, r.label) for r in ann] == [("Archery/v_B_g01_c01.avi", 1)] and ann.classes[1] == "Archery"
    with pytest.raises(DataError, match="testlist02.txt:1: expected 'Class/video.avi"):
        load_annotations(write(tmp_path / "testlist02.txt", "v_B_g01_c01.avi oops\n"))


def test_hmdb51_split_files(tmp_path):
    write(tmp_path / "brush_hair_test_split1.txt", "a.avi 1\nb.avi 2\nc.avi 0\n")
    write(tmp_path / "cartwheel_test_split1.txt", "d.avi 2\ne.avi 1\n")
    write(tmp_path / "cartwheel_test_split2.txt", "d.avi 1\n")
    path = tmp_path / "cartwheel_test_split1.txt"
    train = load_annotations(path)
    assert train.classes == ["brush_hair", "cartwheel"]
    assert [(r.path, r.label) for r in train] == [("brush_hair/a.avi", 0), ("cartwheel/e.avi", 1)]
    assert [r.path for r in load_annotations(path, subset="test")] == ["brush_hair/b.avi", "cartwheel/d.avi"]
    write(tmp_path / "x_test_split3.txt", "a.avi 1\nb.avi\n")
    with pytest.raises(DataError, match="x_test_split3.txt:2: expected"):
        load_annotations(tmp_path / "x_test_split3.txt")


def test_ssv2_json(tmp_path):
    write(tmp_path / "something-something-v2-labels.json",
          json.dumps({"Holding something next to something": "1", "Pushing something from left to right": "0"}))
    entries = [{"id": "78687", "label": "holding a cup next to a pen",
                "template": "Holding [something] next to [something]"},
               {"id": "42", "label": "pushing a box", "template": "Pushing [something] from left to right"}]
    path = write(tmp_path / "something-something-v2-train.json", json.dumps(entries))
    ann = load_annotations(path)
    assert [(r.path, r.label) for r in ann] == [("78687.webm", 1), ("42.webm", 0)]
    write(tmp_path / "test.json", json.dumps([{"id": "1"}]))
    with pytest.raises(DataError, match="test.json: entry 1 has no 'id' and 'template'"):
        load_annotations(tmp_path / "test.json")


def test_folder_per_class(tmp_path):
    for rel in ["walk/b.mp4", "walk/a.avi", "run/x/c.mp4", "run/notes.txt", ".hidden/d.mp4"]:
        write(tmp_path / "ds" / rel, "x")
    ann = load_annotations(tmp_path / "ds")
    assert ann.classes == ["run", "walk"]
    assert [(r.path, r.label) for r in ann] == [("run/x/c.mp4", 0), ("walk/a.avi", 1), ("walk/b.mp4", 1)]
    assert default_root(tmp_path / "ds") == tmp_path / "ds"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class folders with videos"):
        load_annotations(tmp_path / "empty")


def test_missing_file_and_bad_format(tmp_path):
    with pytest.raises(DataError, match="annotation file not found"):
        load_annotations(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="unknown annotation format"):
        load_annotations(write(tmp_path / "a.txt", "a.mp4 0\n"), fmt="yaml")


def test_find_file_takes_the_path_as_given_then_under_the_root(tmp_path, monkeypatch):
    from laps.data.annotations import find_file

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "val.txt").write_text("a.mp4 0\n")
    assert find_file("val.txt", "data", "--list") == Path("data") / "val.txt"  # under the root
    (tmp_path / "val.txt").write_text("b.mp4 0\n")
    assert find_file("val.txt", "data", "--list") == Path("val.txt")  # as given first
    assert find_file(tmp_path / "data" / "val.txt", "elsewhere", "--list") == tmp_path / "data" / "val.txt"


def test_find_file_names_both_places_it_looked(tmp_path, monkeypatch):
    from laps.data.annotations import find_file

    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as err:
        find_file("test.txt", "data", "--list")
    assert str(err.value) == f"--list test.txt: not found at {tmp_path / 'test.txt'} nor {tmp_path / 'data' / 'test.txt'}"
    with pytest.raises(DataError, match=r"no data root to look under"):
        find_file("test.txt", None, "--list")
