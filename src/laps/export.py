"""Export a video model for serving: ``torch.export`` (``.pt2``) or ONNX (``.onnx``), then check it.

Both formats take clips ``(B, T, C, H, W)`` with a dynamic batch ``B`` and the model's own clip
length ``T`` and size, fixed at export time. A clip of another length is refused by the runtime with
a message that names the input and the expected size (the leap attention schedule depends on
``T``). :func:`check_export` runs the exported graph on random clips of two batch sizes and compares
it with the eager model; for ONNX it uses ONNX Runtime on the CPU.

ONNX needs ``pip install 'laps[export]'`` (onnx, onnxscript, onnxruntime). While a model is being
exported, the frame reorder and shift of :mod:`laps.ops` build their result out of place
(slices and concatenations) instead of writing into a preallocated tensor: ONNX would turn those
writes into hundreds of scatters, and ONNX Runtime ran such a graph 2.5x slower than eager.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from laps.errors import ConfigError, ExportError, ShapeError
from laps.models.video import VideoClassifier

FORMATS = (".pt2", ".onnx")
OPSET = 18
#: keys of a model's config (``model.video_cfg``) written into an ONNX file's metadata: how to feed it
FEEDING_KEYS = ("classes", "img_size", "mean", "std", "interpolation", "sampling_rate", "sampling")
#: a check passes when max |exported - eager| <= TOLERANCE * max(1, max |eager logits|): fp32
#: kernels that sum in another order differ in the last bits, relative to the logits' size
TOLERANCE = 1e-4


def _format(path: Path) -> str:
    if path.suffix not in FORMATS:
        raise ConfigError(f"cannot export to {path.name}: the format follows the extension, one of {', '.join(FORMATS)}")
    return path.suffix


def example_clips(model: VideoClassifier, batch_size: int, seed: int = 0) -> torch.Tensor:
    """Random clips ``(batch_size, T, C, H, W)`` of the size ``model`` takes."""
    size = model.video_cfg.img_size
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch_size, model.num_frames, model.in_chans, size, size, generator=generator)


def export(model: VideoClassifier, path: str | Path, batch_size: int = 2, metadata: dict[str, Any] | None = None) -> Path:
    """Export ``model`` (put in eval mode) to ``path`` (``.pt2`` or ``.onnx``) with a dynamic batch.
    An ONNX file's metadata holds, as JSON strings, ``num_frames``, ``temporal``, the
    :data:`FEEDING_KEYS` of the model's ``video_cfg``, and ``metadata``."""
    path = Path(path)
    fmt = _format(path)
    model.eval()
    clips = example_clips(model, batch_size)
    dynamic = ({0: torch.export.Dim("batch", min=1, max=4096)},)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == ".pt2":
        program = torch.export.export(model, (clips,), dynamic_shapes=dynamic)
        torch.export.save(program, path)
        return path
    try:
        import onnx
    except ImportError:
        raise ConfigError("ONNX export needs onnx, onnxscript and onnxruntime: pip install 'laps[export]'") from None
    program = torch.onnx.export(model, (clips,), dynamo=True, opset_version=OPSET, input_names=["clips"],
                                output_names=["logits"], dynamic_shapes=dynamic, verbose=False)
    program.save(str(path))
    proto = onnx.load(str(path))
    config = model.video_cfg.to_dict()
    info = {"num_frames": model.num_frames, "temporal": model.temporal,
            **{key: config[key] for key in FEEDING_KEYS}, **(metadata or {})}
    for key, value in info.items():
        proto.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(proto, str(path))
    return path


def load_exported(path: str | Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """A callable ``clips -> logits`` (torch tensors) running the exported file (the ``.pt2``
    program's module, or an ONNX Runtime CPU session); it refuses clips of another shape than the
    export's ``(B, T, C, H, W)`` with a :class:`~laps.errors.ShapeError` that says what to do."""
    path = Path(path)
    if _format(path) == ".pt2":
        program = torch.export.load(path)
        placeholder = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == "clips")
        shape, forward = tuple(placeholder.meta["val"].shape[1:]), program.module()
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        shape = tuple(session.get_inputs()[0].shape[1:])

        def forward(clips: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(session.run(None, {"clips": clips.numpy()})[0])

    expected = tuple(int(size) for size in shape)

    def run(clips: torch.Tensor) -> torch.Tensor:
        if clips.dim() != 5 or tuple(clips.shape[1:]) != expected:
            raise ShapeError(
                f"{path.name} takes clips (B, {', '.join(map(str, expected))}) = (B, T, C, H, W), got "
                f"{tuple(clips.shape)}; the clip length and size are fixed at export: sample {expected[0]} frames of "
                f"{expected[2]}x{expected[3]}, or export again after model.set_num_frames(T)"
            )
        return forward(clips)

    return run


def check_export(model: VideoClassifier, path: str | Path, batch_sizes: tuple[int, ...] = (1, 3)) -> dict[str, Any]:
    """Run the exported file and the eager model on random clips of each batch size ->
    ``{"format", "max_abs_diff", "max_abs_logit", "passed", "batch_sizes"}``; raises if it fails."""
    run = load_exported(path)
    model.eval()
    diff = scale = 0.0
    for seed, batch in enumerate(batch_sizes, 1):
        clips = example_clips(model, batch, seed)
        with torch.no_grad():
            expected = model(clips)
            got = run(clips)
        diff = max(diff, float((got - expected).abs().max()))
        scale = max(scale, float(expected.abs().max()))
    report = {"format": Path(path).suffix, "max_abs_diff": diff, "max_abs_logit": scale,
              "tolerance": TOLERANCE * max(1.0, scale), "batch_sizes": list(batch_sizes)}
    report["passed"] = diff <= report["tolerance"]
    if not report["passed"]:
        raise ExportError(f"the exported {path} differs from the eager model by {diff:.3g} (logits up to {scale:.3g}, "
                        f"tolerance {report['tolerance']:.3g})")
    return report
