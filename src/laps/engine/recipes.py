"""The recipes shipped with laps (``laps/configs/*.yaml``), found by name from any install.

``--config`` takes a path or a recipe's name: ``demo``, ``demo.yaml`` and ``configs/demo.yaml`` (in
a checkout) name the same file. A path that exists wins; otherwise a name of a shipped recipe; an
error names both places it looked. ``laps train --list-configs`` lists the recipes.
"""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

from laps.errors import ConfigError

SUFFIX = ".yaml"


def recipes_folder() -> Path:
    """The folder of the shipped recipes (``parts/`` in it holds pieces they are based on)."""
    return Path(str(resources.files("laps") / "configs"))


def shipped_recipes() -> dict[str, Path]:
    """Name (the file name without ``.yaml``) -> path of every shipped recipe, sorted by name."""
    return {path.stem: path for path in sorted(recipes_folder().glob(f"*{SUFFIX}"))}


def recipe_summary(path: Path) -> str:
    """The first line of a recipe's opening comment (what the recipe trains), or ``""``."""
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
        if line.strip():
            return ""
    return ""


def resolve_config(name: str | Path) -> Path:
    """The recipe file ``name`` stands for: the path as given if it is a file, else the shipped
    recipe of that name (with or without ``.yaml``). Raises :class:`ConfigError` naming both."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    recipes = shipped_recipes()
    stem = path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.name
    if stem in recipes and (path.parent == Path(".") or path.parent.name == recipes_folder().name):
        return recipes[stem]
    close = difflib.get_close_matches(stem, recipes, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise ConfigError(f"config {name}: no such file ({path.absolute()}) and no shipped recipe named {stem!r}; "
                      f"{hint}'laps train --list-configs' lists the recipes")
