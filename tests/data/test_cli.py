import argparse

import pytest

from laps.cli.data import add_parsers


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="laps")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_check_clean_list_exits_0(index_video, tmp_path, capsys):
    (tmp_path / "list.txt").write_text(f"{index_video} 0\n{index_video} 1\n")
    assert run(["data", "check", str(tmp_path / "list.txt"), "--workers", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == ["checked 2 videos: 0 broken"]


def test_check_reports_broken_files_and_exits_1(index_video, broken_videos, capsys):
    root = broken_videos["empty"].parent
    listing = root / "list.txt"
    listing.write_text(f"{index_video} 0\nempty.mp4 0\nmissing.mp4 1\n")
    assert run(["data", "check", str(listing), "--root", str(root), "--workers", "2"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"BROKEN {root / 'empty.mp4'}: empty file (0 bytes)",
        f"BROKEN {root / 'missing.mp4'}: file not found",
        "checked 3 videos: 2 broken",
    ]


def test_make_synthetic_then_check(tmp_path, capsys):
    out = tmp_path / "syn"
    assert run(["make-synthetic", str(out), "--videos-per-class", "2", "--seed", "1", "--video-frames", "4",
                "--size", "16"]) == 0
    assert run(["data", "check", str(out / "val.txt"), "--workers", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "checked 10 videos: 0 broken"


@pytest.mark.parametrize("argv", [["data", "check", "--help"], ["make-synthetic", "--help"]])
def test_help_has_examples(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(argv)
    assert exit_info.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_check_finds_the_list_under_root(tmp_path, index_video, capsys, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    (root / "val.txt").write_text(f"{index_video} 0\n")
    monkeypatch.chdir(tmp_path)
    assert run(["data", "check", "val.txt", "--root", "data", "--workers", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == ["checked 1 video: 0 broken"]
