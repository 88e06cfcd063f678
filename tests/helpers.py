"""Helpers the tests share: tiny model settings, oracles, index-coloured frames, a tiny config.

A normal module (``from tests.helpers import ...``); the conftest files hold only fixtures.
"""

import math

import numpy as np
import torch

from laps.engine.config import load_config

TINY_VIT = "vit_tiny_patch16_224"
TINY_VIT_KW = {"img_size": 32, "patch_size": 8}  # 16 tokens + class token per frame

#: family name -> (timm model, overrides): the one tiny model per family the tests build (random weights)
TINY_MODELS = {
    "VisionTransformer": (TINY_VIT, {**TINY_VIT_KW, "depth": 2}),
    "Eva": ("eva02_tiny_patch14_224", {"img_size": 28, "depth": 2}),
    "Visformer": ("visformer_tiny", {"img_size": 32, "depth": (1, 1, 1), "embed_dim": 48, "num_heads": 2}),
}

INDEX_FRAMES = 40

#: seconds a quick test (not marked slow) may run before it counts as stuck (tests/conftest.py)
QUICK_TIMEOUT_S = 60


def index_colours(num: int) -> np.ndarray:
    """A distinct flat RGB colour per frame index -> uint8 (num, 3)."""
    i = np.arange(num)
    return np.stack([6 * i, 255 - 6 * i, (97 * i) % 256], axis=1).astype(np.uint8)


def index_frames(num: int, height: int = 48, width: int = 64) -> np.ndarray:
    """uint8 (num, H, W, 3): frame i is flat ``index_colours(num)[i]``."""
    return np.broadcast_to(index_colours(num)[:, None, None, :], (num, height, width, 3)).copy()


def frame_ids(frames: np.ndarray, num: int = INDEX_FRAMES) -> list[int]:
    """Decoded index-coloured frames (K, H, W, 3) -> the index whose colour each is nearest to."""
    means = frames.reshape(len(frames), -1, 3).mean(axis=1)
    distances = np.linalg.norm(means[:, None, :] - index_colours(num)[None].astype(float), axis=-1)
    return distances.argmin(axis=1).tolist()


def masked_joint_attention(q, k, v, num_frames, groups):
    """Reference: attention over all T*N tokens of a clip with a block mask of the groups."""
    frames, heads, tokens, dim = q.shape
    batch = frames // num_frames

    def joint(x):
        return x.reshape(batch, num_frames, heads, tokens, -1).permute(0, 2, 1, 3, 4).reshape(batch, heads, num_frames * tokens, -1)

    group_of = torch.empty(num_frames, dtype=torch.long, device=q.device)
    for index, group in enumerate(groups):
        group_of[list(group)] = index
    token_group = group_of.repeat_interleave(tokens)
    allowed = token_group[:, None] == token_group[None, :]
    scores = joint(q) @ joint(k).transpose(-1, -2) / math.sqrt(dim)
    attn = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
    out = attn @ joint(v)
    return out.reshape(batch, heads, num_frames, tokens, -1).permute(0, 2, 1, 3, 4).reshape(frames, heads, tokens, -1)


def looped_shift(x, num_frames, fold):
    """Reference shift on (B*T, ..., C): explicit loop over frames; T=1 stays unchanged."""
    if num_frames == 1:
        return x.clone()
    clips = x.reshape(-1, num_frames, *x.shape[1:])
    out = clips.clone()
    for t in range(num_frames):
        out[:, t, ..., :fold] = clips[:, t + 1, ..., :fold] if t + 1 < num_frames else 0
        out[:, t, ..., fold : 2 * fold] = clips[:, t - 1, ..., fold : 2 * fold] if t > 0 else 0
    return out.reshape(x.shape)


def tiny_config(data_dir, output, **overrides):
    return load_config(None, {
        "model.backbone": "vit_tiny_patch16_224", "model.img_size": 32, "model.patch_size": 16, "model.depth": 1,
        "model.num_frames": 4, "data.root": str(data_dir), "data.train_list": "train.txt", "data.val_list": "val.txt",
        "data.sampling_rate": 2, "data.scale_min": 32, "data.scale_max": 36, "data.num_workers": 0,
        "data.flip": False, "optim.epochs": 2, "optim.batch_size": 4, "optim.lr": 1e-3, "optim.warmup_epochs": 0,
        "runtime.output": str(output), "runtime.progress": False, **overrides,
    })


def fill_hub_cache(cache, repo_id, folder):
    """Lay out ``folder``'s files as huggingface_hub's cache holds a downloaded snapshot."""
    revision = "0" * 40
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for path in folder.iterdir():
        (snapshot / path.name).write_bytes(path.read_bytes())


#: tiny open_clip configs: CLIP's own ViT with QuickGELU, and SigLIP's form (a timm trunk with
#: attention pooling and no projection, a text tower without causal mask, a logit bias); their text
#: sides use open_clip's SimpleTokenizer, whose vocabulary ships with open_clip (SigLIP's own
#: tokenizer would come from the Hub)
TINY_OPEN_CLIP = {"embed_dim": 32, "quick_gelu": True,
                  "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
                  "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
TINY_SIGLIP = {"embed_dim": 64, "init_logit_bias": -10, "custom_text": True,
               "vision_cfg": {"image_size": 160, "timm_model_name": "test_vit", "timm_model_pretrained": False,
                              "timm_pool": "map", "timm_proj": "none"},
               "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1,
                            "no_causal_mask": True, "proj_bias": True, "pool_type": "last",
                            "norm_kwargs": {"eps": 1e-6}}}
HALF = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}


def save_open_clip(model_cfg: dict, folder, preprocess_cfg: dict | None = None, seed: int = 0):
    """Build an open_clip model of ``model_cfg`` with seeded random weights and save it as a local
    folder (``open_clip_config.json`` + ``open_clip_model.safetensors``, ``local-dir:folder``); returns
    the folder."""
    import json
    import logging
    from pathlib import Path

    import open_clip
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg or {}}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    torch.manual_seed(seed)
    logging.disable(logging.WARNING)  # open_clip warns that the folder has no weights yet
    try:
        model = open_clip.create_model(f"local-dir:{folder}")
    finally:
        logging.disable(logging.NOTSET)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    return folder
