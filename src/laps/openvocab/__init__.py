"""Open vocabulary: a video classifier from class names, through a CLIP-family model's text tower.

``laps.zero_shot("local-dir:PATH", ["dancing", "cooking"])`` reads an open_clip model (open_clip is
the optional extra ``pip install 'laps[zeroshot]'``, imported only here), turns its image tower into a
timm model through timm's own checkpoint filter, embeds the class prompts with open_clip's
``build_zero_shot_classifier`` and returns an ordinary :class:`~laps.models.video.VideoClassifier`
with a :class:`~laps.models.text_head.TextHead`; no text tower is kept.
"""

from laps.openvocab.bridge import (
                                   OpenClip,
                                   feed_of,
                                   is_open_clip_id,
                                   load_open_clip,
                                   read_config,
                                   relabel,
                                   resolve_id,
                                   text_embeddings,
                                   text_head_model,
                                   zero_shot,
)
from laps.openvocab.templates import VIDEO_TEMPLATES, read_templates

__all__ = ["VIDEO_TEMPLATES", "OpenClip", "feed_of", "is_open_clip_id", "load_open_clip", "read_config", "read_templates",
           "relabel", "resolve_id", "text_embeddings", "text_head_model", "zero_shot"]
