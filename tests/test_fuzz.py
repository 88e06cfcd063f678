"""Fuzzing: the annotation parsers (every format), the config loader and the video decoder get
random and mutated inputs; the only exceptions that may escape are laps's documented ones
(:class:`~laps.errors.LapsError`), and the decoder's memory stays bounded.

Hypothesis runs derandomised (the same inputs every run) with ``LAPS_FUZZ_EXAMPLES`` examples per
target (default 40: seconds in CI); set it higher for a longer search, e.g.
``LAPS_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py -s``. The number of inputs each target
tried is printed at the end of the module.
"""

import json
import os
from collections import Counter
from contextlib import closing
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from laps.data import load_annotations, load_classes
from laps.data.decoding import open_video
from laps.data.encoding import write_video
from laps.engine.config import load_config, parse_overrides
from laps.errors import LapsError

pytestmark = pytest.mark.slow  # hundreds of generated inputs a target

EXAMPLES = int(os.environ.get("LAPS_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
TRIED = Counter()

#: per format: a file name it is read from and a valid example of its content
SAMPLES = {
    "list": ("train.txt", "a/v1.mp4 0\nb/v2.mp4 1\n"),
    "kinetics": ("train.csv", "label,youtube_id,time_start,time_end,split\nabseiling,abc,10,20,train\nyoga,def,0,10,train\n"),
    "ucf101": ("trainlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nYoYo/v_YoYo_g01_c01.avi 2\n"),
    "hmdb51": ("brush_hair_test_split1.txt", "April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1\nB.avi 2\nC.avi 0\n"),
    "ssv2": ("something-something-v2-train.json", json.dumps([{"id": "1", "template": "Holding [something]"},
                                                              {"id": "2", "template": "Dropping [something]"}])),
}
SSV2_LABELS = json.dumps({"Holding something": "0", "Dropping something": "1"})


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print("\nfuzz inputs tried: " + ", ".join(f"{name} {count}" for name, count in sorted(TRIED.items())))


def _mutate(data: bytes, draw) -> bytes:
    """Truncate, flip bits, overwrite a range or insert bytes, as ``draw`` decides."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=64))
            data[at:at + len(chunk)] = chunk
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
    return bytes(data)


def _documented_only(call):
    """Run ``call``; a LapsError is a documented outcome, anything else fails the test."""
    try:
        call()
    except LapsError:
        pass


# ---------------------------------------------------------------- annotation parsers
@pytest.mark.parametrize("fmt", [*SAMPLES, "auto"])
def test_annotation_parsers_raise_only_data_errors(fmt, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"ann_{fmt}")
    (folder / "something-something-v2-labels.json").write_text(SSV2_LABELS)
    (folder / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 YoYo\n")

    @FUZZ
    @given(st.data())
    def run(data):
        name, sample = SAMPLES["list" if fmt == "auto" else fmt]
        if fmt == "auto":
            name = data.draw(st.sampled_from([n for n, _ in SAMPLES.values()]))
        source = data.draw(st.sampled_from(["mutated", "bytes", "text"]))
        if source == "mutated":
            content = _mutate(sample.encode(), data.draw)
        elif source == "bytes":
            content = data.draw(st.binary(max_size=512))
        else:
            content = data.draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=256)).encode()
        path = folder / name
        path.write_bytes(content)
        TRIED[f"annotations[{fmt}]"] += 1
        _documented_only(lambda: load_annotations(path, folder, fmt))

    run()


def test_class_maps_raise_only_data_errors(tmp_path):
    path = tmp_path / "classes.json"

    @FUZZ
    @given(st.one_of(st.binary(max_size=256), st.builds(lambda v: json.dumps(v).encode(), st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
        max_leaves=10))))
    def run(content):
        path.write_bytes(content)
        TRIED["classes.json"] += 1
        _documented_only(lambda: load_classes(path))

    run()


# ---------------------------------------------------------------- config loader
RECIPE = (Path(__file__).parent.parent / "configs" / "demo.yaml").read_text()
KEYS = ["model.backbone", "model.num_frames", "model.levels", "data.flip", "data.num_workers", "optim.lr",
        "optim.milestones", "runtime.seed", "optim.nope", "model", "base", ""]


def test_config_loader_raises_only_config_errors(tmp_path):
    path = tmp_path / "recipe.yaml"

    @FUZZ
    @given(st.data())
    def run(data):
        source = data.draw(st.sampled_from(["mutated", "text", "overrides"]))
        if source == "overrides":
            items = data.draw(st.lists(st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS),
                                                 st.text(max_size=12)), max_size=4))
            TRIED["config overrides"] += 1
            _documented_only(lambda: load_config(None, parse_overrides(items)))
            return
        if source == "mutated":
            content = _mutate(RECIPE.encode(), data.draw)
        else:
            content = data.draw(st.text(alphabet="abcdefglmnoprstuwz_.:-[]{}!&*|>'\"#%@ \n\t0123456789",
                                        max_size=200)).encode()
        path.write_bytes(content)
        TRIED["config files"] += 1
        _documented_only(lambda: load_config(path))

    run()


# ---------------------------------------------------------------- decoder
def _peak_reset() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak resident set
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return 0.0


def _empty_video(path: Path) -> None:
    """An mp4 with a video stream and no frames."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = 32
        container.start_encoding()  # header written, then no packet


def _y4m_huge(path: Path, side: int) -> None:
    """A raw video whose header declares ``side x side`` frames, followed by a few bytes of one."""
    path.write_bytes(f"YUV4MPEG2 W{side} H{side} F25:1 Ip A1:1 C420jpeg\nFRAME\n".encode() + bytes(1000))


@pytest.fixture(scope="module")
def seed_videos(tmp_path_factory):
    """Real files to mutate and edge cases to read as they are."""
    folder = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (16, 32, 48, 3), dtype=np.uint8)
    write_video(folder / "plain.mp4", frames, fps=25, gop=4)
    write_video(folder / "one_frame.mp4", frames[:1], fps=25)
    write_video(folder / "odd_rate.mp4", frames, fps=7.77)
    write_video(folder / "variable_rate.mp4", frames, pts_seconds=np.cumsum(rng.uniform(0.01, 0.3, 16)).tolist())
    with av.open(str(folder / "plain.mkv"), "w") as out, av.open(str(folder / "plain.mp4")) as src:
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    _empty_video(folder / "no_frames.mp4")
    _y4m_huge(folder / "huge.y4m", 8000)  # 64 megapixels: FFmpeg would allocate it, laps refuses
    _y4m_huge(folder / "absurd.y4m", 30000)  # 900 megapixels: FFmpeg itself refuses
    return folder


def _read_all_ways(path: Path) -> None:
    with closing(open_video(path)) as video:
        n = video.info.num_frames
        video.get(np.arange(min(n, 8)))
        video.get([n - 1, 0])


def test_edge_case_videos_decode_or_raise_documented_errors(seed_videos):
    outcomes = {}
    for path in sorted(seed_videos.iterdir()):
        try:
            _read_all_ways(path)
            outcomes[path.name] = "ok"
        except LapsError as err:
            outcomes[path.name] = str(err)
    assert outcomes["one_frame.mp4"] == outcomes["odd_rate.mp4"] == outcomes["variable_rate.mp4"] == "ok"
    assert outcomes["plain.mp4"] == outcomes["plain.mkv"] == "ok"
    assert "no video" in outcomes["no_frames.mp4"]  # mp4 drops a stream that got no packet
    assert "8000x8000" in outcomes["huge.y4m"] and "larger than" in outcomes["huge.y4m"]
    assert "not a video PyAV can open" in outcomes["absurd.y4m"] and "Errno" not in outcomes["absurd.y4m"]


def test_decoder_raises_only_decode_errors_with_bounded_memory(seed_videos, tmp_path):
    seeds = {p.name: p.read_bytes() for p in seed_videos.iterdir()}
    can_measure = _peak_reset()
    base = _peak_mb()

    @FUZZ
    @given(st.data())
    def run(data):
        source = data.draw(st.sampled_from(["mutated", "mutated", "bytes"]))
        name = data.draw(st.sampled_from(sorted(seeds)))
        content = _mutate(seeds[name], data.draw) if source == "mutated" else data.draw(st.binary(max_size=4096))
        path = tmp_path / f"fuzz{Path(name).suffix}"
        path.write_bytes(content)
        TRIED["videos"] += 1
        _documented_only(lambda: _read_all_ways(path))

    run()
    if can_measure:
        assert _peak_mb() - base < 300, f"decoding fuzzed videos raised the peak RSS by {_peak_mb() - base:.0f} MB"
