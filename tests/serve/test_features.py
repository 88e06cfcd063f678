"""Features of whole datasets: the same clips and windows as predict, the head on a clip feature
gives predict's logits, batches across videos change nothing."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

import laps
from laps.data import VideoRecord
from laps.data.transforms import Normalize
from laps.errors import ConfigError, VideoDecodeError
from laps.serve.inference import clip_dataset, iter_predictions
from laps.serve.timeline import open_stream, slide
from tests.serve.conftest import VIDEOS


def _paths(folder):
    return [str(folder / name) for name in VIDEOS]


def test_the_head_of_a_clip_feature_gives_predicts_logits(feature_model, video_folder):
    paths = _paths(video_folder)
    features = dict(laps.extract_features(feature_model, paths, views="2x3", batch_size=4))
    dataset = clip_dataset(feature_model, [VideoRecord(os.path.abspath(p), 0) for p in paths], ".", "2x3")
    for index, path in enumerate(paths):
        assert features[path].shape == (192,) and features[path].dtype == np.float32
        with torch.no_grad():
            logits = feature_model(dataset.normalize(dataset[index][0])).mean(0)  # predict's six views
            head = feature_model.head(torch.from_numpy(features[path])[None])[0]
        assert logits.std() > 0.01
        torch.testing.assert_close(head, logits, atol=1e-5, rtol=0)
    one_view = dict(laps.extract_features(feature_model, paths, views="1x1"))
    for item in iter_predictions(feature_model, paths, views="1x1", top_k=5):
        with torch.no_grad():
            probs = feature_model.head(torch.from_numpy(one_view[item["path"]])[None])[0].softmax(-1)
        classes = feature_model.video_cfg.class_names
        for top in item["top"]:
            assert float(probs[classes.index(top["label"])]) == pytest.approx(top["prob"], abs=1e-5)


class Recorder(nn.Module):
    """The model, keeping every clip batch it is given."""

    def __init__(self, model):
        super().__init__()
        self.model, self.clips = model, []

    def forward(self, clips):
        self.clips.append(clips)
        return self.model(clips)


def test_window_rows_are_the_windows_of_the_timeline(feature_model, video_folder):
    paths = _paths(video_folder)
    rows = dict(laps.extract_features(feature_model, paths, window=2.0, stride=1.0, batch_size=3))
    feed = feature_model.video_cfg
    for path in paths:
        recorder = Recorder(feature_model)
        with open_stream(path) as container:
            timeline = slide(recorder, container, feed.class_names, num_frames=feed.num_frames, img_size=feed.img_size,
                             normalize=Normalize((feed.mean, feed.std)), window=2.0, stride=1.0, batch_size=2,
                             progress=False, interpolation=feed.interpolation)
        with torch.no_grad():
            expected = feature_model.forward_features(torch.cat(recorder.clips))
        assert rows[path].shape == (len(timeline.starts), 192)
        np.testing.assert_array_equal(timeline.starts, np.arange(len(timeline.starts)) * 1.0)
        np.testing.assert_allclose(rows[path], expected.numpy(), atol=1e-5, rtol=0)
    # windows whose last sample time (start + 1.75 s) has a frame: the last frames are at 1.375 s (shorter than a
    # window: one padded), 3.625 s and 5.375 s
    assert [len(rows[p]) for p in paths] == [1, 2, 4]


def test_batches_across_videos_give_each_video_its_own_features(feature_model, video_folder):
    paths = _paths(video_folder)
    alone = {p: dict(laps.extract_features(feature_model, [p], window=2.0))[p] for p in paths}
    mixed = dict(laps.extract_features(feature_model, paths, window=2.0, batch_size=4))  # batches span videos
    assert list(mixed) == paths
    for path in paths:
        np.testing.assert_allclose(mixed[path], alone[path], atol=1e-5, rtol=0)
    assert not np.allclose(mixed[paths[1]][0], mixed[paths[2]][0], atol=1e-3)


def test_a_broken_video_raises_or_is_left_out(feature_model, video_folder, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video\n")
    paths = [_paths(video_folder)[0], str(broken), _paths(video_folder)[2]]
    with pytest.raises(VideoDecodeError, match="broken.mp4"):
        list(laps.extract_features(feature_model, paths, views="1x1"))
    assert [p for p, _ in laps.extract_features(feature_model, paths, views="1x1", on_error="skip")] == [paths[0], paths[2]]
    with pytest.raises(ConfigError, match="--stride"):
        list(laps.extract_features(feature_model, paths, window=2.0, stride=0.0))


@pytest.mark.slow  # DataLoader worker processes
def test_decoding_in_worker_processes_gives_the_same_features(feature_model, video_folder):
    paths = _paths(video_folder) * 2
    here = list(laps.extract_features(feature_model, paths, views="2x1", batch_size=3))
    workers = list(laps.extract_features(feature_model, paths, views="2x1", batch_size=3, num_workers=2))
    assert [p for p, _ in workers] == paths
    for (_, a), (_, b) in zip(here, workers):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def test_laps_extract_features_is_the_serve_function():
    from laps.serve.features import extract_features

    assert laps.extract_features is extract_features
