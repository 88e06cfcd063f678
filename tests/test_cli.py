"""The command line: one vocabulary for the same thing in every command, earlier names kept."""

import pytest

from laps.cli import build_parser

def _commands(parser):
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def test_no_command_shows_an_old_name():
    for name, command in _commands(build_parser()).items():
        shown = command.format_help()
        for old in ("--frames ", "--batch ", "--out ", "--num_frames"):
            assert old not in shown, (name, old)


@pytest.mark.parametrize("command, old, new", [
    (["flops", "vit_tiny_patch16_224"], ["--frames", "4"], ["--num-frames", "4"]),
    (["bench", "model"], ["--frames", "8,16", "--batch", "2", "--json", "b.json"],
     ["--num-frames", "8,16", "--batch-size", "2", "--output", "b.json"]),
    (["demo"], ["--out", "somewhere"], ["--output", "somewhere"]),
    (["make-synthetic", "out"], ["--frames", "4"], ["--video-frames", "4"]),
])
def test_old_names_still_work(command, old, new):
    parser = build_parser()
    parsed_old, parsed_new = vars(parser.parse_args(command + old)), vars(parser.parse_args(command + new))
    assert parsed_old == parsed_new
    assert parsed_new != vars(parser.parse_args(command))  # the option changed something
