"""No import cycle among the project's own modules.

The graph is computed from the source with `ast`, not by importing anything:

- every package at the top of the project (a folder with `__init__.py`) is found, not listed by
  hand, so a package added later is covered without editing this file;
- every import statement counts wherever it stands: at module level, inside a function (a lazy
  import is still a dependency, and the one that hides a cycle), and inside `if TYPE_CHECKING:`
  (a cycle through type hints is still two modules that each need the other to be understood);
- relative imports are resolved, and `from pkg import name` points at the module `pkg.name` when
  that is a module, else at `pkg` itself;
- importing `a.b.c` also runs `a/__init__.py` and `a/b/__init__.py`; those implicit edges are not
  counted, as in most import-graph tools: a package that re-exports its modules (`models`, `config`)
  would otherwise be in a cycle with each of them. What a package's `__init__` imports is counted
  like any module's.

Imports by name in a string (`importlib.import_module("bot.app")`) are not seen; the project has
none."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".venv", "venv", ".git", "instance", "node_modules", "build", "dist"}


def project_packages(root: Path) -> list[str]:
    """Top-level folders of `root` that are Python packages (hold an `__init__.py`)."""
    return sorted(
        p.name for p in root.iterdir()
        if p.is_dir() and p.name not in SKIP_DIRS and not p.name.startswith(".") and (p / "__init__.py").is_file()
    )


def module_files(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name → file, for every module under the given top-level packages."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root)
            if any(part in SKIP_DIRS or part == "__pycache__" for part in rel.parts):
                continue
            parts = list(rel.with_suffix("").parts)
            # Only folders that are packages themselves hold importable modules.
            if not all((root / Path(*parts[:i]) / "__init__.py").is_file() for i in range(1, len(parts))):
                continue
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `module` imports, anywhere in its file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def add(target: str) -> None:
        # `import a.b.c` of a name that is not a module (a typo, a C extension): nearest known parent.
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != module:
            found.add(target)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            source = (
                _resolve_relative(module, is_package, node.level, node.module) if node.level else node.module or ""
            )
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                add(candidate if candidate in known else source)
    return found


def import_graph(root: Path, packages: Iterable[str] | None = None) -> dict[str, set[str]]:
    modules = module_files(root, project_packages(root) if packages is None else packages)
    known = set(modules)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle per strongly connected component, each as `[a, b, …, a]`, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    counter = 0

    def connect(start: str) -> None:  # Tarjan's algorithm, iteratively (no recursion limit)
        nonlocal counter
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)

    for name in sorted(graph):
        if name not in index:
            connect(name)

    found = []
    for component in components:
        if len(component) == 1 and next(iter(component)) not in graph.get(next(iter(component)), ()):
            continue
        start = min(component)
        found.append(_shortest_cycle(graph, start, component))
    return sorted(found)


def _shortest_cycle(graph: dict[str, set[str]], start: str, within: set[str]) -> list[str]:
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        next_frontier = []
        for node in frontier:
            for child in sorted(graph.get(node, ())):
                if child == start:
                    return [*paths[node], start]
                if child in within and child not in paths:
                    paths[child] = [*paths[node], child]
                    next_frontier.append(child)
        frontier = next_frontier
    raise AssertionError(f"{start} is in a cycle but none leads back to it")  # cannot happen


def describe(cycle: list[str]) -> str:
    return " → ".join(cycle)


# -- the project ------------------------------------------------------------------------------------


def test_the_project_has_no_import_cycle():
    graph = import_graph(ROOT)
    assert {"bot", "handlers", "models", "scheduler", "config", "fakewx"} <= {m.split(".")[0] for m in graph}
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(describe(c) for c in found)


def test_nothing_imports_the_composition_root_back():
    """`bot.app` (create_app and `python -m bot`'s command group) sits on top: it is reached only by
    `bot.__main__` and by the package's `bot.create_app`, which imports it on first use."""
    graph = import_graph(ROOT)
    importers = sorted(m for m, targets in graph.items() if "bot.app" in targets and not m.startswith("tests."))
    assert importers == ["bot", "bot.__main__"]
    assert not [m for m, targets in graph.items() if "bot.__main__" in targets]
    package = ast.parse((ROOT / "bot" / "__init__.py").read_text(encoding="utf-8"))
    assert not [node for node in package.body if isinstance(node, ast.Import | ast.ImportFrom)]


# -- the graph itself, on small trees ---------------------------------------------------------------


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_finds_a_cycle_through_a_lazy_import_and_names_it(tmp_path):
    root = write(tmp_path, {
        "app/__init__.py": "",
        "app/factory.py": "def create():\n    from app import cli\n",
        "app/cli.py": "from app.serve import run\n",
        "app/serve.py": "def run():\n    from app.factory import create\n",
        "app/leaf.py": "import json\n",
    })
    graph = import_graph(root)
    assert graph["app.factory"] == {"app.cli"}
    assert graph["app.cli"] == {"app.serve"}
    assert [describe(c) for c in cycles(graph)] == ["app.cli → app.serve → app.factory → app.cli"]


def test_resolves_relative_imports_and_from_package_import_module(tmp_path):
    root = write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from . import b\nfrom .sub.c import thing\n",
        "pkg/b.py": "from pkg import sub\n",
        "pkg/sub/__init__.py": "from ..b import helper\n",
        "pkg/sub/c.py": "from .. import a\nthing = 1\n",
    })
    graph = import_graph(root)
    assert graph["pkg.a"] == {"pkg.b", "pkg.sub.c"}
    assert graph["pkg.b"] == {"pkg.sub"}
    assert graph["pkg.sub"] == {"pkg.b"}  # `from ..b import helper`: helper is a name, pkg.b the module
    assert graph["pkg.sub.c"] == {"pkg.a"}
    assert [describe(c) for c in cycles(graph)] == [
        "pkg.a → pkg.sub.c → pkg.a",
        "pkg.b → pkg.sub → pkg.b",
    ]


def test_counts_type_checking_imports_and_ignores_other_packages(tmp_path):
    root = write(tmp_path, {
        "one/__init__.py": "",
        "one/x.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from two.y import Y\n",
        "two/__init__.py": "",
        "two/y.py": "import one.x\nimport os.path\nimport flask\n",
        "notes/readme.py": "import one.x\n",  # not a package: not part of the project's graph
    })
    graph = import_graph(root)
    assert project_packages(root) == ["one", "two"]
    assert graph["two.y"] == {"one.x"}
    assert [describe(c) for c in cycles(graph)] == ["one.x → two.y → one.x"]


@pytest.mark.parametrize("files", [
    {"p/__init__.py": "", "p/a.py": "from p import b\n", "p/b.py": "import json\n"},
    {"p/__init__.py": "", "p/a.py": "import p.a\n"},  # a module naming itself is no cycle
])
def test_an_acyclic_tree_passes(tmp_path, files):
    assert cycles(import_graph(write(tmp_path, files))) == []
