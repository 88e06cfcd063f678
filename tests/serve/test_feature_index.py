"""The shared index and the inputs: concurrent appends lose and double nothing, a torn line is
skipped, names never collide or leave the folder, shards and ranks split the videos exactly."""

from __future__ import annotations

import json
import threading

import pytest

from laps.errors import ConfigError
from laps.serve.feature_index import append_record, index_lock, is_done, read_index, record, replace_record
from laps.serve.feature_inputs import FeatureInput, list_inputs, npy_name, parse_shard, share


def test_concurrent_appends_keep_every_record_whole(tmp_path):
    def writer(k):
        for i in range(25):
            append_record(tmp_path, record(f"v{k}_{i}.mp4", f"v{k}_{i}.npy", (3, 4)))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = (tmp_path / "index.jsonl").read_text().splitlines()
    assert len(lines) == 200 and len({json.loads(line)["video"] for line in lines}) == 200


def test_an_append_waits_for_the_lock_of_another_writer(tmp_path):
    appended = threading.Event()

    def writer():
        append_record(tmp_path, record("late.mp4", "late.npy", (1,)))
        appended.set()

    with index_lock(tmp_path):
        thread = threading.Thread(target=writer)
        thread.start()
        assert not appended.wait(0.3)  # held off while another process writes
        assert not (tmp_path / "index.jsonl").exists()
    thread.join(5)
    assert appended.is_set() and list(read_index(tmp_path)) == ["late.mp4"]


def test_a_torn_line_is_skipped_and_ended_by_the_next_append(tmp_path):
    append_record(tmp_path, record("a.mp4", "a.npy", (4,)))
    with open(tmp_path / "index.jsonl", "a") as f:
        f.write('{"video": "b.mp4", "fi')  # a writer killed mid-line
    append_record(tmp_path, record("c.mp4", error="c.mp4: empty file (0 bytes)"))
    records = read_index(tmp_path)
    assert list(records) == ["a.mp4", "c.mp4"]
    assert records["c.mp4"] == {"video": "c.mp4", "file": None, "shape": None, "status": "failed",
                                "error": "c.mp4: empty file (0 bytes)"}


def test_a_replaced_record_is_the_only_one_of_its_video(tmp_path):
    for name in ("a", "b", "c"):
        append_record(tmp_path, record(f"{name}.mp4", error="broken"))
    replace_record(tmp_path, record("b.mp4", "b.npy", (2, 8)))
    lines = [json.loads(line) for line in (tmp_path / "index.jsonl").read_text().splitlines()]
    assert [(r["video"], r["status"]) for r in lines] == [("a.mp4", "failed"), ("c.mp4", "failed"), ("b.mp4", "ok")]


def test_done_means_ok_with_the_file_or_failed(tmp_path):
    (tmp_path / "a.npy").write_bytes(b"x")
    assert is_done(record("a.mp4", "a.npy", (1,)), tmp_path)
    assert not is_done(record("b.mp4", "b.npy", (1,)), tmp_path)  # its file is gone
    assert is_done(record("c.mp4", error="bad"), tmp_path) and not is_done(record("c.mp4", error="bad"), tmp_path, True)
    assert not is_done(None, tmp_path)


def test_names_follow_the_input_and_stay_inside_the_output(tmp_path):
    (tmp_path / "clips" / "a").mkdir(parents=True)
    for name in ("clips/a/x.mp4", "clips/x.avi", "clips/notes.txt"):
        (tmp_path / name).write_bytes(b"v")
    listed = tmp_path / "list.txt"
    listed.write_text("# my videos\nclips/a/x.mp4 3\n../elsewhere/y.mp4\n/abs/z.webm\n")
    found = list_inputs([str(tmp_path / "clips"), str(listed)])
    assert [(f.video, f.name) for f in found] == [
        (str(tmp_path / "clips/a/x.mp4"), "a/x.npy"), (str(tmp_path / "clips/x.avi"), "x.npy"),
        (str(tmp_path / "../elsewhere/y.mp4"), "__/elsewhere/y.npy"), ("/abs/z.webm", "abs/z.npy"),
    ]  # clips/a/x.mp4 twice (folder and list): once, under its first name
    assert npy_name("../../up.mp4") == "__/__/up.npy"


def test_two_videos_that_would_share_a_file_are_refused(tmp_path):
    for name in ("a/x.mp4", "b/x.mp4"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"v")
    with pytest.raises(ConfigError, match="would both write x.npy"):
        list_inputs([str(tmp_path / "a/x.mp4"), str(tmp_path / "b/x.mp4")])


def test_shards_and_ranks_split_the_videos_exactly():
    videos = [FeatureInput(f"{i}.mp4", f"{i}.npy") for i in range(23)]
    parts = [share(videos, (i, 3), rank, 2) for i in range(3) for rank in range(2)]
    assert sorted(v.video for part in parts for v in part) == sorted(v.video for v in videos)
    assert share(videos, (1, 3)) == videos[1::3]
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "1", "-1/2", "a/b"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad)
