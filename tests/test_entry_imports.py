"""The command modules form no import circle: what they share comes from pipeline.console."""

import ast
from pathlib import Path

PIPELINE = Path(__file__).resolve().parent.parent / "pipeline"
ENTRY_POINTS = ("cli", "commands", "init", "console")


def _imports(module: str) -> set[str]:
    """The pipeline modules ``module`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse((PIPELINE / f"{module}.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "pipeline":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipeline."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("pipeline.")}
    return found & set(ENTRY_POINTS)


def test_entry_points_import_no_circle():
    graph = {module: _imports(module) for module in ENTRY_POINTS}
    assert graph["console"] == set()

    def reaches(start: str, goal: str, seen: frozenset = frozenset()) -> bool:
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
                   for nxt in graph[start])

    circles = [module for module in ENTRY_POINTS if reaches(module, module)]
    assert circles == [], f"import circle through {circles}: {graph}"
