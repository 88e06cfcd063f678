"""Precise exception types. The CLI turns any :class:`LapsError` into a one-line message."""


class LapsError(Exception):
    """Base class of every error laps raises on purpose."""


class ShapeError(LapsError, ValueError):
    """A tensor has the wrong rank, size or channel count."""


class ConfigError(LapsError, ValueError):
    """A configuration value or argument is invalid."""


class UnsupportedBackboneError(LapsError, ValueError):
    """The timm model is not one of the backbone families laps can convert."""


class CheckpointError(LapsError, RuntimeError):
    """A checkpoint file is missing, unreadable or belongs to another model."""


class VideoDecodeError(LapsError, RuntimeError):
    """A video file cannot be read or holds no decodable frames."""


class DataError(LapsError, ValueError):
    """An annotation file, class map or dataset layout is malformed."""
