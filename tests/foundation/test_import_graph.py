"""The import graph of the four apps, read from their source with ast (nothing is imported).

- One way only: tenants ← billing ← messaging ← console. tenants imports neither billing nor
  messaging; billing never imports messaging; nothing imports the staff console.
- No cycles between modules.

Every import counts, at module level or inside a function: an import moved into a
function hides a cycle from Python's loader, not from the reader, and the modules still
depend on each other. Only imports under `if TYPE_CHECKING:` are left out (they never
run). Migrations are Django's record of the schema, not code anyone imports, and are
left out.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("tenants", "billing", "messaging", "console")
# What each app may import of the others.
ALLOWED = {"tenants": set(), "billing": {"tenants"}, "messaging": {"tenants", "billing"},
           "console": {"tenants", "billing", "messaging"}}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                found[_module_name(path)] = path
    return found


def _under_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `name` imports. `from a.b import c` is the module a.b.c when
    there is one (a submodule), otherwise a.b."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom) or _under_type_checking(node, parents):
            continue
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            targets.add(submodule if submodule in modules else base)
    return {t for t in targets if t.split(".")[0] in APPS and t != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {t for t in _imports(name, path, modules) if t in modules} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_the_graph_is_read_from_every_app():
    graph = _graph()
    assert {name.split(".")[0] for name in graph} == set(APPS)
    # The reader sees imports of every form: plain, from-a-package, relative and in a function.
    assert "billing.ledger" in graph["messaging.pipeline.delivery"]
    assert "messaging.pipeline.delivery" in graph["messaging.pipeline.tasks"]


def test_apps_import_one_way_only():
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in _graph().items()
        for target in targets
        if target.split(".")[0] != name.split(".")[0] and target.split(".")[0] not in ALLOWED[name.split(".")[0]]
    )
    assert wrong == []


def test_no_modules_import_each_other_in_a_cycle():
    assert _cycles(_graph()) == []


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
