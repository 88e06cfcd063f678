"""Recipes by name: a path as given, else a shipped recipe; the package ships every recipe."""

import fnmatch
from pathlib import Path

import pytest
import tomllib

from laps.engine.config import load_config
from laps.engine.recipes import recipe_summary, recipes_folder, resolve_config, shipped_recipes
from laps.errors import ConfigError

ROOT = Path(__file__).parents[2]


def test_every_recipe_file_is_package_data():
    """A pip install carries every recipe and every part they are based on."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["laps"]
    package = ROOT / "src" / "laps"
    files = [p.relative_to(package).as_posix() for p in (package / "configs").rglob("*") if p.is_file()]
    assert len(files) >= len(shipped_recipes()) + 3  # the recipes and parts/
    assert [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)] == []
    assert recipes_folder() == package / "configs"


def test_the_checkout_folder_is_the_shipped_one():
    assert sorted(p.name for p in (ROOT / "configs").glob("*.yaml")) == [f"{n}.yaml" for n in shipped_recipes()]


@pytest.mark.parametrize("name", ["demo", "demo.yaml", "configs/demo.yaml"])
def test_a_name_finds_the_shipped_recipe_from_any_folder(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    assert resolve_config(name) == recipes_folder() / "demo.yaml"
    assert load_config(name).model.backbone == load_config(recipes_folder() / "demo.yaml").model.backbone


def test_a_name_finds_a_recipe_with_a_base(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config("ucf101_clip_b16_laps").data.format == "ucf101"  # base: k400 recipe and parts/


def test_a_file_that_exists_wins_over_the_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("demo.yaml").write_text("optim:\n  epochs: 77\n")
    assert load_config("demo.yaml").optim.epochs == 77
    assert resolve_config("demo") == recipes_folder() / "demo.yaml"  # "demo" is no file here


def test_an_unknown_name_names_both_places_and_the_closest_recipe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_config("dmeo")
    message = str(err.value)
    assert str(tmp_path / "dmeo") in message and "no shipped recipe named 'dmeo'" in message
    assert "did you mean demo?" in message and "--list-configs" in message and "\n" not in message


def test_a_path_in_another_folder_is_not_taken_for_a_recipe(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        resolve_config(tmp_path / "demo.yaml")


def test_every_recipe_has_a_one_line_summary():
    summaries = {name: recipe_summary(path) for name, path in shipped_recipes().items()}
    assert summaries["demo"].startswith("The `laps demo` recipe")
    assert [name for name, line in summaries.items() if not line] == []


def test_summary_is_the_first_comment_line_or_nothing(tmp_path):
    (tmp_path / "a.yaml").write_text("\n# trains A\n# more\nmodel: {}\n")
    (tmp_path / "b.yaml").write_text("model: {}\n# late comment\n")
    assert (recipe_summary(tmp_path / "a.yaml"), recipe_summary(tmp_path / "b.yaml")) == ("trains A", "")


def test_list_configs_prints_one_line_per_shipped_recipe(capsys):
    from laps.cli import main

    assert main(["train", "--list-configs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    recipes = shipped_recipes()
    assert [line.split()[0] for line in lines] == list(recipes)
    for line, (name, path) in zip(lines, recipes.items()):
        assert line.endswith(recipe_summary(path)) and recipe_summary(path)
