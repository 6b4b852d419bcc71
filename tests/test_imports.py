"""The package structure holds: ``textgen.core`` is the ground floor, ``data_prep`` and ``layout_model`` build only on
it, and no two modules import each other (directly or round a loop), counting imports inside functions too."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("textgen", "data_prep", "layout_model")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _imports(path: Path, name: str) -> set[str]:
    """Project modules imported anywhere in the file (module level or inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    modules = _modules()
    return {m for m in found if m in modules and m != name}


def test_core_imports_nothing_of_the_project_above_it():
    bad = []
    for name, path in _modules().items():
        if name.startswith("textgen.core"):
            bad += [(name, m) for m in _imports(path, name) if not m.startswith("textgen.core")]
    assert not bad, f"textgen.core must stand alone: {bad}"


def test_data_prep_and_layout_model_build_only_on_core():
    bad = []
    for name, path in _modules().items():
        if name.split(".")[0] in ("data_prep", "layout_model"):
            for m in _imports(path, name):
                top = m.split(".")[0]
                if top == "textgen" and not (m == "textgen" or m.startswith("textgen.core")):
                    bad.append((name, m))
                if top in ("data_prep", "layout_model") and top != name.split(".")[0]:
                    bad.append((name, m))
    assert not bad, f"only textgen.core below the top: {bad}"


def test_no_import_cycles():
    graph = {name: _imports(path, name) for name, path in _modules().items()}
    # a package's __init__ importing its own submodules is not a cycle worth reporting
    for name in graph:
        graph[name] = {
            m for m in graph[name] if not (m.startswith(name + ".") and _modules()[name].name == "__init__.py")
        }
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
