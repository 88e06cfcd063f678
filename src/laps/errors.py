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


class Preempted(LapsError):
    """Training stopped on a stop signal (SIGTERM / SIGUSR1) after writing a checkpoint; resume it."""

    exit_code = 75  # EX_TEMPFAIL: a temporary failure, try again (with --resume)


class TrainingDiverged(LapsError, RuntimeError):
    """Too many optimizer steps in a row had a non-finite loss or gradient."""

    exit_code = 3


class TooManyBrokenFiles(DataError):
    """The share of unreadable or missing videos in a split passed ``data.max_broken_share``."""

    exit_code = 4


class LoaderStalled(LapsError, RuntimeError):
    """The data loader's workers gave no batch within ``data.loader_timeout`` seconds."""

    exit_code = 5


class OutputInUse(LapsError, RuntimeError):
    """The output directory holds another run, or another process is writing to it."""


class ExportError(LapsError, RuntimeError):
    """An exported model does not reproduce the eager model."""
