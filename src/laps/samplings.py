"""How a clip's frames are taken from a video, by name: plain data with no torch import, so that a
training config is checked before torch and timm load.

``"dense"``: ``num_frames`` frames every ``sampling_rate`` frames of a window; ``"segment"`` (TSN):
one frame from each of ``num_frames`` equal segments of the video.
"""

from laps.errors import ConfigError

SAMPLINGS = ("dense", "segment")
#: the frame step of dense clips when neither a model nor a config gives one
DEFAULT_SAMPLING_RATE = 8


def check_sampling(sampling: str) -> str:
    """``sampling`` if it is one of :data:`SAMPLINGS`, else a one-line :class:`ConfigError`."""
    if sampling not in SAMPLINGS:
        raise ConfigError(f"unknown sampling {sampling!r}; choose one of {', '.join(SAMPLINGS)}")
    return sampling
