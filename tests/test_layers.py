"""The floor plan: the model library imports nothing of the training toolkit, and neither the
library, the command line's parser nor the model benchmark starts PyAV, fvcore, TensorBoard or
matplotlib."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import laps

PACKAGE = Path(laps.__file__).parent
CORE = ["__init__.py", "errors.py", "ops.py", "frame_order.py", "integrity.py", "atomic.py", "version.py", "variants.py",
        "samplings.py", "export.py", "models"]
TOOLKIT_PACKAGES = ("laps.data", "laps.infer", "laps.engine", "laps.serve", "laps.analysis", "laps.bench", "laps.cli",
                    "laps.demo", "laps.app")
TOOLKIT_MODULES = ["av", "fvcore", "tensorboard", "matplotlib"]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_model_library_imports_no_toolkit_module():
    files = [p for entry in CORE for p in ([PACKAGE / entry] if entry.endswith(".py") else (PACKAGE / entry).rglob("*.py"))]
    assert len(files) >= 8
    leaks = {f"{p.relative_to(PACKAGE)}: {name}" for p in files for name in _imports(p)
             if name.startswith(TOOLKIT_PACKAGES) or name.split(".")[0] in TOOLKIT_MODULES}
    assert not leaks


#: what a user of the library does, step by step, in one fresh interpreter
STEPS = {
    "building and running a laps model": """
import torch, laps
model = laps.create_model("vit_tiny_patch16_224", num_classes=3, temporal="laps", num_frames=4, img_size=32,
                          patch_size=8, depth=1)
assert model(torch.randn(1, 4, 3, 32, 32)).shape == (1, 3)
""",
    "building the command line's parser": "import laps.cli; laps.cli.build_parser()",
    # laps bench model runs where PyAV is not installed
    "importing the model benchmark and the runtime it runs under": "import laps.bench.model, laps.infer.runtime",
}


@pytest.mark.slow  # a fresh interpreter
def test_building_a_model_and_the_command_line_parser_load_no_toolkit_library():
    script = "import json, sys\nloaded = {}\n" + "".join(
        f"{code}\nloaded[{step!r}] = [m for m in {TOOLKIT_MODULES!r} if m in sys.modules]\n" for step, code in STEPS.items()
    ) + "print(json.dumps(loaded))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {step: [] for step in STEPS}


#: run in a fresh interpreter: a saved model and a video, then predict, features and the app's
#: analysis of it; prints the laps.engine modules loaded, and the predictions
USING_A_MODEL = """
import sys
import numpy as np
import laps
from laps.cli import main
from laps.data.encoding import write_video
from laps.data.synthetic import synthetic_clip

out = sys.argv[1]
model = laps.create_model("vit_tiny_patch16_224", num_classes=3, num_frames=4, img_size=32, patch_size=8, depth=1)
model.save_pretrained(out + "/model", classes=["a", "b", "c"], sampling_rate=2)
write_video(out + "/v.mp4", np.ascontiguousarray(synthetic_clip(0, seed=0, num_frames=12, size=48)), fps=8)
assert main(["predict", "--checkpoint", out + "/model", out + "/v.mp4", "--output", out + "/p.jsonl"]) == 0
assert main(["features", "--checkpoint", out + "/model", out + "/v.mp4", "--output", out + "/features",
             "--workers", "0"]) == 0
from laps.app.analyse import Settings, analyse
from laps.serve.inference import load_model
analyse(load_model(out + "/model"), out + "/v.mp4", "v.mp4", Settings(long_after=0.5, window=1.0, stride=1.0))
print(sorted(name for name in sys.modules if name.startswith("laps.engine")))
"""


@pytest.mark.slow  # a fresh interpreter
def test_predict_features_and_the_app_load_no_training_module(tmp_path):
    """Using a trained model stands on laps.infer: laps predict, laps features and the app's analysis
    of a video run without importing a module of laps.engine (training)."""
    result = subprocess.run([sys.executable, "-c", USING_A_MODEL, str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "p.jsonl").read_text().count("\n") == 1
