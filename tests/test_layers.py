"""The house read from its imports (those inside functions included): every import runs from a
higher layer to a lower one (data and models -> pruning -> fitness -> problems -> methods -> CLI),
no module imports itself back through others, and no method imports another method."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "evoprune"
# the layer of each top-level module or package: imports go to the same layer or a lower one
LAYER = {"errors": 0, "registry": 1, "checks": 1, "io": 1, "devices": 1, "scoring": 1, "data": 2, "models": 2,
         "fingerprints": 3, "pruning": 3, "train": 4, "fitness": 5, "problems": 6, "config": 7, "checkpoints": 7,
         "plotting": 7, "select": 7, "export": 7, "runs": 7, "methods": 8, "cli": 9}


def module_name(path: Path) -> str:
    parts = list(path.with_suffix("").relative_to(PACKAGE.parent).parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Each evoprune module -> the evoprune modules it imports (``from . import x`` counts as x)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    found = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:  # a module imported by name, else the module the name is in
                    targets.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
        found[name] = {t for t in targets if t in modules and t != name}
    return found


def top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "evoprune"


def test_every_top_level_module_has_a_layer():
    assert {top(m) for m in imports()} - {"evoprune"} <= set(LAYER)


def test_no_import_runs_from_a_lower_layer_to_a_higher_one():
    upward = [f"{m} -> {t}" for m, targets in imports().items() for t in targets
              if top(m) in LAYER and top(t) in LAYER and LAYER[top(t)] > LAYER[top(m)]]
    assert upward == []


def test_no_method_imports_another_method():
    def method(name):
        parts = name.split(".")
        return parts[2] if len(parts) > 2 and parts[1] == "methods" and parts[2] != "base" else None
    crossing = [f"{m} -> {t}" for m, targets in imports().items() for t in targets
                if method(m) and method(t) and method(m) != method(t)]
    assert crossing == []


def test_no_import_cycle_between_modules():
    graph = imports()
    # a package's __init__ re-exports its modules: only imports between distinct modules count,
    # and an __init__ importing its own submodules is not a cycle through them
    edges = {m: {t for t in targets if not t.startswith(m + ".")} for m, targets in graph.items()}
    cycles, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for nxt in edges.get(node, ()):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"
    for node in edges:
        if node not in state:
            visit(node, [node])
    assert cycles == []
