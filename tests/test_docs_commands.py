"""Every shell command in README.md and docs/*.md, run as written in a fresh folder that holds the
files the commands name (tiny synthetic videos and datasets in each layout, a trained tiny run).

A fenced ``bash``/``sh``/``shell`` block is cut into commands (a line, with its ``\\`` continuations,
without its trailing comment); a block with ``#SBATCH`` lines is one script. The commands of each
document run in order in a copy of that folder; a command written in several documents runs once.
A command runs unless :data:`SKIPPED` names it (a piece of its text, with the reason);
:data:`REWRITES` are the only changes made to a command before it runs, each with its reason.
``laps app`` serves until stopped: it passes once its page answers.
"""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: a piece of a command's text -> why the test does not run it (only a GPU, the network or a cluster)
SKIPPED = {
    "make demo": "installs ./.venv from the package index (network)",
    "make test": "installs ./.venv from the package index (network)",
    "pip install": "installs from the package index (network)",
    "laps train --config k400_visformer_s_laps": "the recipe starts from ImageNet weights on the timm hub (network)",
    "laps train --config configs/k400_visformer_s_laps.yaml": "the recipe starts from Hub weights (network)",
    "configs/k400_clip_b16_laps.yaml": "the recipe starts from CLIP weights on the timm hub (network)",
    "configs/ucf101_dinov3_b16_laps.yaml": "the recipe starts from DINOv3 weights on the timm hub (network)",
    "runs/k400_visformer_s_laps": "uses the run of the Kinetics recipe, which starts from Hub weights (network)",
    "--checkpoint runs/vs_laps": "uses the run of the Kinetics recipe, which starts from Hub weights (network)",
    "torchrun --nproc_per_node 8 -m laps train": "eight GPU processes training a ViT-B/L from Hub weights",
    "torchrun --nproc_per_node 4 -m laps train": "four GPUs sharing a ViT-L from Hub weights",
    "--nnodes 2": "two machines (the network)",
    "#SBATCH": "a Slurm cluster with GPUs",
    "rtsp://": "a camera on the network",
    "https://example.org": "a video on the network",
    "--checkpoint user/": "a model on the Hugging Face Hub (network)",
    "--checkpoint someone/": "a model on the Hugging Face Hub (network)",
    "--model vit_base_patch16_clip_quickgelu_224.openai": "CLIP weights from the timm hub (network)",
    "local-dir:clip_b16": "an open_clip model folder fetched from the Hub (network)",
    "hf-hub:": "weights from the Hugging Face Hub (network)",
    "ucf101_clip_b16_laps_text": "the recipe starts from CLIP weights on the Hub (network)",
    "--peers timesformer,videomae": "Hugging Face transformers, the [peers] extra (installed from the network)",
    "laps bench model": "ViT-B and Visformer-S at 224 px, five variants each, for speed: a GPU's work",
    "memory_table.py --check-real": "the GPU memory table of ViT-B/L models (benchmarks/, a GPU's work)",
    "LAPS_FUZZ_EXAMPLES": "the suite's own tests/test_fuzz.py, at 2,000 examples a target",
    "laps demo": "`laps demo --quick` runs in tests/test_first_hour.py; the full demo takes many minutes on a CPU",
    "...": "'...' elides a run's flags: not a command as written",
}

#: text in a command -> what it becomes here, and why
REWRITES = {
    "--videos-per-class 40": ("--videos-per-class 2", "a tiny dataset"),
    "/data/k400": ("data/k400", "the dataset folder, in the test's folder rather than at /data"),
    "--data-root DIR": ("--data-root runs/demo/data", "DIR stands for a dataset folder"),
}

#: the port a ``laps app`` command serves on (7860 unless it says)
SERVER_PAGE = re.compile(r"--port (\d+)")


def _units(text: str) -> list[str]:
    """The commands of every shell block of a Markdown text: a script (``#SBATCH``) whole, else each
    line joined with its continuations and stripped of its comment."""
    units = []
    for block in re.findall(r"^```(?:bash|sh|shell)\n(.*?)^```", text, re.S | re.M):
        if "#SBATCH" in block:
            units.append(block.strip())
            continue
        for line in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s+#\s.*$", "", line).strip()
            if command and not command.startswith("#"):
                units.append(" ".join(command.split()))
    return units


def _commands() -> list[tuple[str, str]]:
    return [(doc.name, unit) for doc in DOCS for unit in _units(doc.read_text())]


def _skip_reason(command: str) -> str | None:
    return next((reason for key, reason in SKIPPED.items() if key in command), None)


def _rewritten(command: str) -> str:
    for old, (new, _) in REWRITES.items():
        command = command.replace(old, new)
    return command


def test_the_skip_list_and_the_rewrites_name_commands_the_docs_hold():
    commands = [command for _, command in _commands()]
    assert len(commands) > 40
    for key in [*SKIPPED, *REWRITES]:
        assert any(key in command for command in commands), f"stale entry: no command in the docs holds {key!r}"


def _video(path: Path, label: int = 0, frames: int = 16) -> None:
    from laps.data.encoding import write_video
    from laps.data.synthetic import synthetic_clip

    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, synthetic_clip(label, label, frames, 32), 8)


def _kinetics(root: Path) -> None:
    header = "label,youtube_id,time_start,time_end,split"
    for split, name in (("train", "train.csv"), ("val", "validate.csv")):
        rows = [header]
        for label in ("abseiling", "air drumming"):
            rows.append(f"{label},{split}{label[:3]},0,10,{split}")
            _video(root / split / label / f"{split}{label[:3]}_000000_000010.mp4", len(rows))
        (root / name).write_text("\n".join(rows) + "\n")
    for name in ("a", "b"):
        _video(root / "videos" / f"{name}.mp4")


def _datasets(folder: Path) -> None:
    """Tiny raw downloads in every layout ``laps data prepare`` reads, named as the docs name them."""
    for root in ("data/k400", "kinetics400"):
        _kinetics(folder / root)
    shutil.copy(folder / "data/k400/train.csv", folder / "train.csv")
    ssv2 = folder / "ssv2"
    (ssv2 / "labels").mkdir(parents=True)
    labels = {"Pushing something": "0", "Pulling something": "1"}
    lists = {"train": [{"id": "1", "template": "Pushing [something]"}, {"id": "2", "template": "Pulling [something]"}],
             "validation": [{"id": "3", "template": "Pulling [something]"}], "labels": labels}
    for name, content in lists.items():
        (ssv2 / f"labels/something-something-v2-{name}.json").write_text(json.dumps(content))
    for i in (1, 2, 3):
        _video(ssv2 / "20bn-something-something-v2" / f"{i}.webm", i)
    splits = folder / "ucfTrainTestlist"
    splits.mkdir()
    (splits / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    (splits / "trainlist01.txt").write_text("ApplyEyeMakeup/v_a1.avi 1\nArchery/v_b1.avi 2\n")
    (splits / "testlist01.txt").write_text("Archery/v_b2.avi\n")
    for i, name in enumerate(("ApplyEyeMakeup/v_a1.avi", "Archery/v_b1.avi", "Archery/v_b2.avi")):
        _video(folder / "UCF-101" / name, i)
    splits = folder / "testTrainMulti_7030_splits"
    splits.mkdir()
    (splits / "brush_hair_test_split1.txt").write_text("a.avi 1\nb.avi 2\n")
    (splits / "cartwheel_test_split1.txt").write_text("c.avi 1\nd.avi 2\n")
    for i, name in enumerate(("brush_hair/a.avi", "brush_hair/b.avi", "cartwheel/c.avi", "cartwheel/d.avi")):
        _video(folder / "hmdb51" / name, i)
    for label in range(2):
        for i in range(5):
            _video(folder / "my_videos" / f"class{label}" / f"v{i}.mp4", label)


def _videos(folder: Path, classes: list[str]) -> None:
    """The videos the docs predict on and take features of."""
    from laps.data.encoding import write_video
    from laps.data.synthetic_timeline import long_synthetic

    for label, name in enumerate(("videos/a/x.mp4", "videos/b/x.mp4", "videos/c.mp4", "thumos14/videos/t1.mp4")):
        _video(folder / name, label)
    for name, parts in (("long.mp4", [(0, 6.0), (5, 6.0)]), ("recording.mp4", [(1, 4.0), (2, 4.0)]),
                        ("two_parts.mp4", [(0, 4.0), (1, 4.0)])):
        frames, truth = long_synthetic(parts, size=32, fps=8)
        write_video(folder / name, frames, 8)
    with open(folder / "two_parts.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["start", "end", "label"])
        writer.writeheader()
        writer.writerows({**row, "label": row["label"] if row["label"] in classes else classes[0]} for row in truth)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A folder with the demo's data (tiny), a run of its recipe in runs/mine (and runs/e8, the
    docs' name for it trained 8 epochs), and every file the commands name."""
    from laps.cli import main
    from laps.data import make_synthetic

    folder = tmp_path_factory.mktemp("docs") / "base"
    make_synthetic(folder / "runs/demo/data", videos_per_class=2, seed=0, size=32)
    assert main(["train", "--config", "demo", "--data-root", str(folder / "runs/demo/data"), "--train-list",
                 "train.txt", "--val-list", "val.txt", "--output", str(folder / "runs/mine"), "optim.epochs=1",
                 "data.num_workers=0"]) == 0
    shutil.copytree(folder / "runs/mine", folder / "runs/e8")
    _datasets(folder)
    _videos(folder, json.loads((folder / "runs/demo/data/classes.json").read_text()))
    return folder


@pytest.fixture(scope="module")
def folders(base):
    """A copy of ``base`` for each document, made when its first command runs: the commands of one
    document run in order in one folder, as a reader would run them."""
    made = {}

    def folder(doc: str) -> Path:
        if doc not in made:
            made[doc] = shutil.copytree(base, base.parent / doc.removesuffix(".md"))
        return made[doc]

    return folder


def _environment() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    src = str(ROOT / "src")
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"], "OMP_NUM_THREADS": "1",
            "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _serve(command: str, folder: Path) -> None:
    """Start a server command, wait for its page, stop it."""
    port = SERVER_PAGE.search(command)
    url = f"http://127.0.0.1:{port.group(1) if port else 7860}/"
    server = subprocess.Popen(["bash", "-c", command], cwd=folder, env=_environment(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            assert server.poll() is None, (command, server.stdout.read())
            try:
                with urllib.request.urlopen(url, timeout=5) as page:
                    assert page.status == 200
                    return
            except OSError:
                assert time.time() < deadline, f"{command}: no page at {url}"
                time.sleep(0.5)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _runnable() -> list[tuple[str, str]]:
    """The commands to run, each once (where it is first written)."""
    first = {}
    for doc, command in _commands():
        if _skip_reason(command) is None:
            first.setdefault(command, doc)
    return [(doc, command) for command, doc in first.items()]


@pytest.mark.slow
@pytest.mark.parametrize("doc, command", _runnable(), ids=[f"{doc}:{command[:60]}" for doc, command in _runnable()])
def test_a_documented_command_runs_as_written(folders, doc, command):
    command, folder = _rewritten(command), folders(doc)
    if command.startswith("laps app "):
        _serve(command, folder)
        return
    done = subprocess.run(["bash", "-c", command], cwd=folder, env=_environment(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, (doc, command, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, (doc, command, done.stderr[-3000:])
