"""Rank the videos of a features folder against a sentence: text-to-video search in a CLIP-family
model's joint space.

The folder is one ``laps features --space joint`` wrote (features of a model with a text head: the
mean of the frames' unit image embeddings). A video's score is the cosine between its feature
(normalised again) and the sentence's text embedding; in window mode, its best window's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from laps.errors import ConfigError, DataError
from laps.openvocab import load_open_clip, text_embeddings
from laps.serve.feature_index import read_index


def rank_videos(folder: str | Path, sentence: str, source: str | Path, top_k: int | None = None
                ) -> list[tuple[float, str]]:
    """``(cosine, video)`` of the videos of features ``folder``, best first (the ``top_k`` best), against
    ``sentence`` embedded by the text tower of open_clip model ``source`` (the one the features came from)."""
    folder = Path(folder)
    done = [entry for entry in read_index(folder).values() if entry.get("status") == "ok"]
    if not done:
        raise DataError(f"{folder} holds no features; write them with laps features --space joint --output {folder}")
    text = text_embeddings(load_open_clip(source), [sentence], ["{}"])[0].numpy()
    scores = []
    for entry in done:
        rows = np.load(folder / entry["file"]).astype(np.float32).reshape(-1, entry["shape"][-1])
        if rows.shape[1] != text.shape[0]:
            raise ConfigError(f"{folder} holds {rows.shape[1]}-wide features but {source} embeds text in "
                              f"{text.shape[0]} dimensions; write them with laps features --space joint from that model")
        rows = torch.nn.functional.normalize(torch.from_numpy(rows), dim=-1).numpy()
        scores.append((float((rows @ text).max()), entry["video"]))
    return sorted(scores, key=lambda pair: -pair[0])[:top_k]
