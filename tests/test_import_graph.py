"""The import graph of laps has no cycle: every import a module makes (at the top or inside a
function, or by name: a string that is a laps module's name, as in ``importlib.import_module``,
``laps._EXPORTS`` and ``laps.cli.COMMAND_MODULES``) points down, so each module can be read, and
imported, after the ones it names. The same holds between packages, and every package sits on a
floor of :data:`FLOORS`: an import only goes to the same floor or one below."""

import ast
from pathlib import Path

import laps

PACKAGE = Path(laps.__file__).parent


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imported(tree: ast.AST, modules: set[str]) -> set[str]:
    """The laps modules a module's code imports (``from laps.x import y`` is laps.x.y when that is a module)."""
    names, stack = set(), [tree]
    while stack:
        node = stack.pop()
        if _type_checking_only(node):
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                         for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("laps."):
            names.add(node.value)  # a module imported by name (a bare "laps" is the variant)
        stack.extend(ast.iter_child_nodes(node))
    return {name for name in names if name in modules}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    files = {_module_name(path, package): path for path in package.rglob("*.py")}
    return {name: _imported(ast.parse(path.read_text()), set(files)) - {name} for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as a path ``[a, b, ..., a]``, or ``[]`` when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [node, nxt] if nxt in path else [node, nxt]
            if nxt not in state and (found := visit(nxt, path + [node])):
                return found
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start, [])):
            return found
    return []


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_the_laps_import_graph_has_no_cycle():
    graph = import_graph()
    assert {"laps.models.video", "laps.models.sharing", "laps.models.factory"} <= set(graph)
    assert "laps.models.sharing" in graph["laps.models.video"]  # function-level imports are edges too
    assert find_cycle(graph) == []


#: the floors of the house, from the ground up: a package imports only its own floor and the ones below
FLOORS = (
    ("laps.version", "laps.errors", "laps.variants", "laps.samplings", "laps.atomic", "laps.integrity", "laps.frame_order",
     "laps.ops", "laps.models", "laps.export", "laps.openvocab"),     # the model library
    ("laps.data", "laps.analysis"),                 # the toolkit's ground floor
    ("laps.infer",),                                # running a model: device, prediction, evaluation
    ("laps.engine", "laps.serve"),                  # training; using a trained model (neither imports the other)
    ("laps.app", "laps.bench", "laps.demo"),        # programs built on both
    ("laps.cli", "laps.__main__", "laps"),          # the command line; the package's lazy public names
)
#: packages on one floor that never import each other
APART = (("laps.engine", "laps.serve"),)


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """``graph`` with each module folded into its package under laps (``laps.engine.trainer`` -> ``laps.engine``)."""
    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])

    folded: dict[str, set[str]] = {}
    for module, imported in graph.items():
        folded.setdefault(package(module), set()).update(package(name) for name in imported)
    return {name: imported - {name} for name, imported in folded.items()}


def floor_breaches(packages: dict[str, set[str]]) -> list[str]:
    """The imports ``a -> b`` of a :func:`package_graph` that go up a floor or between :data:`APART` packages."""
    floor = {name: level for level, names in enumerate(FLOORS) for name in names}
    upward = [f"{a} -> {b}" for a, imported in packages.items() for b in imported if floor[b] > floor[a]]
    across = [f"{a} -> {b}" for pair in APART for a in pair for b in pair if b in packages.get(a, ())]
    return sorted(upward + across)


def test_packages_have_no_cycle_and_no_import_goes_up_a_floor():
    packages = package_graph(import_graph())
    floor = {name for names in FLOORS for name in names}
    assert set(packages) <= floor, f"put these packages on a floor: {sorted(set(packages) - floor)}"
    assert find_cycle(packages) == []
    assert floor_breaches(packages) == []


def test_the_floor_check_sees_an_import_going_up():
    folded = package_graph({"laps.engine.trainer": {"laps.serve.inference"}, "laps.serve.inference": set()})
    assert folded == {"laps.engine": {"laps.serve"}, "laps.serve": set()}


def test_a_module_named_in_a_string_is_an_import():
    modules = {"laps.models.factory", "laps.serve.features", "laps.cli.predict"}
    exports = ast.parse('_EXPORTS = {"create_model": "laps.models.factory", "extract_features": "laps.serve.features"}')
    assert _imported(exports, modules) == {"laps.models.factory", "laps.serve.features"}
    commands = ast.parse('COMMAND_MODULES = ("laps.cli.predict",)\nimportlib.import_module("laps.cli.predict")')
    assert _imported(commands, modules) == {"laps.cli.predict"}


def test_the_floor_check_fails_on_a_string_import_going_up(tmp_path):
    """A copy of laps where ``laps.models.factory`` names ``laps.serve.features`` in a string (as
    ``_EXPORTS`` did) breaches its floor, and the check says so."""
    import shutil

    copy = tmp_path / "laps"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert floor_breaches(package_graph(import_graph(copy))) == []
    with open(copy / "models" / "factory.py", "a") as f:
        f.write('\n_LATER = {"extract_features": "laps.serve.features"}\n')
    assert floor_breaches(package_graph(import_graph(copy))) == ["laps.models -> laps.serve"]
