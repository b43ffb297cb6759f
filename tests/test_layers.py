"""The import graph, lazy imports included: every import goes to the same floor or one below,
the five libraries never import each other, and no module imports itself through a circle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "delift_dvc"
# floor of each room (top-level module or package); a room imports only rooms on lower floors
FLOORS = {
    "errors": 0, "atomic": 0, "hashing": 0, "progress": 0,
    "data": 1, "utility": 1, "store": 1, "selection": 1, "executors": 1,
    "kernels": 2, "quality": 2,
    "config": 3,
    "stages": 4,
    "experiments": 5, "api": 5, "reporting": 5,
    "cli": 6, "__main__": 7,
}
LIBRARIES = {"data", "utility", "store", "selection", "executors"}


def modules() -> dict[str, set[str]]:
    """module name (dotted, under delift_dvc) -> the delift_dvc modules it imports, anywhere."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = {m.removeprefix("delift_dvc.") for m in found if m.startswith("delift_dvc.")}
    return graph


def room(module: str) -> str:
    return module.split(".")[0] or "__init__"


def test_every_import_goes_down_and_libraries_stay_apart():
    graph = modules()
    known = set(graph)
    for module, imports in graph.items():
        if module == "":
            continue  # delift_dvc/__init__.py: the lazy public names
        for target in imports:
            if target not in known:
                continue  # `from pkg import name` of a function, not a module
            a, b = room(module), room(target)
            if a == b:
                continue
            assert FLOORS[b] < FLOORS[a], f"{module} imports {target}: floor {FLOORS[b]} is not below {FLOORS[a]}"
            assert not (a in LIBRARIES and b in LIBRARIES), f"library {module} imports library {target}"


def test_no_circle_between_modules():
    full = modules()
    graph = {m: {t for t in imports if t in full and t != m} for m, imports in full.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1  # on the current path
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("circle: " + " -> ".join(path + [node, nxt]))
            if nxt not in state:
                visit(nxt, path + [node])
        state[node] = 2  # done

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
