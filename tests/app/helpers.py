"""Helpers of the ``laps app`` tests: a colour oracle as a trained model, and flat-colour videos."""

import time

import numpy as np
import torch
from torch import nn

from laps.data.encoding import write_video
from laps.data.transforms import norm_stats
from laps.engine.builders import config_feed
from laps.models.video_config import VideoConfig
from tests.helpers import tiny_config
from tests.serve.test_timeline import COLOURS, FPS

CLASSES = ["red", "green", "blue", "yellow", "cyan"]


class NormalisedColourOracle(nn.Module):
    """Normalised clips ``(B, T, C, H, W)`` -> logits: per class, the frames whose mean colour is
    nearest to it; ``delay`` seconds per call make concurrent requests overlap."""

    def __init__(self, norm, delay: float = 0.0):
        super().__init__()
        self.mean, self.std = (x.view(-1) for x in norm_stats(norm))
        self.delay = delay
        self.device_anchor = nn.Parameter(torch.zeros(()))  # inference finds the device from a parameter

    def forward(self, clips):
        time.sleep(self.delay)
        means = (clips.mean(dim=(-1, -2)) * self.std + self.mean) * 255  # (B, T, C)
        nearest = torch.cdist(means, torch.tensor(COLOURS, dtype=torch.float32)).argmin(-1)
        return nn.functional.one_hot(nearest, len(COLOURS)).sum(1).float() * 5


def colour_video(path, parts):
    """``[(class index, seconds)]`` of flat colours (with a little noise) at FPS frames a second."""
    frames = np.concatenate([np.broadcast_to(COLOURS[k], (round(s * FPS), 32, 32, 3)) for k, s in parts])
    write_video(path, frames + np.random.default_rng(0).integers(0, 8, frames.shape, dtype=np.uint8), fps=FPS)
    return path


def oracle_model(tmp_path, delay: float = 0.0) -> NormalisedColourOracle:
    """The oracle with what a model of ``laps.from_pretrained`` has: its clip length, class count and
    ``video_cfg`` (how it is fed)."""
    config = tiny_config(tmp_path, tmp_path / "run")
    model = NormalisedColourOracle(config_feed(config).norm, delay).eval()
    model.num_frames, model.num_classes = config.model.num_frames, len(CLASSES)
    model.video_cfg = VideoConfig(backbone=None, temporal="base2d", num_frames=config.model.num_frames,
                                  num_classes=len(CLASSES), img_size=config.model.img_size, mean=model.mean.tolist(),
                                  std=model.std.tolist(), interpolation="bilinear", classes=CLASSES,
                                  sampling_rate=config.data.sampling_rate, sampling=config.data.sampling)
    return model
