"""Prompt templates: how a class name becomes the sentences its text embedding averages.

:data:`VIDEO_TEMPLATES`, the default, follows the prompt set the CLIP paper (Radford et al., 2021)
used for zero-shot Kinetics-700: each of "a photo of", "a video of", "a example of" and
"a demonstration of" (the paper's wording, kept as it is) before the name alone and before
"a person", "a person using", "a person doing", "a person during", "a person performing" and
"a person practicing" the name: 28 templates. A templates file has one template per line, ``{}``
standing for the class name.
"""

from __future__ import annotations

from pathlib import Path

from laps.errors import ConfigError

_MEDIA = ("a photo of", "a video of", "a example of", "a demonstration of")
_ACTS = ("{}", "a person {}", "a person using {}", "a person doing {}", "a person during {}",
         "a person performing {}", "a person practicing {}")
#: the default templates (see the module)
VIDEO_TEMPLATES: tuple[str, ...] = tuple(f"{medium} {act}." for medium in _MEDIA for act in _ACTS)


def check_templates(templates: list[str] | tuple[str, ...], source: object = "templates") -> tuple[str, ...]:
    """``templates`` as a tuple, each holding exactly one ``{}``; a :class:`ConfigError` naming ``source``
    otherwise."""
    if not templates:
        raise ConfigError(f"{source} holds no template; give one per line, with {{}} for the class name")
    bad = [t for t in templates if t.count("{}") != 1]
    if bad:
        raise ConfigError(f"{source}: template {bad[0]!r} must hold {{}} exactly once, where the class name goes")
    return tuple(templates)


def read_templates(path: str | Path) -> tuple[str, ...]:
    """The templates of a file, one per non-empty line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"templates file {path} does not exist; give a text file with one template per line")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return check_templates([line for line in lines if line], path)
