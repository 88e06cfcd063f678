"""The version of laps (as in pyproject.toml), in a module of its own that every layer can import."""

__version__ = "0.1.0"
