"""The layout rules `make lint` and the suite hold the code to (ARCHITECTURE.md explains them).

1. No import circle between modules of app/, counting imports inside functions too (a deferred
   import hides a circle, it does not remove it); imports under `if TYPE_CHECKING:` are for the
   type checker only and do not count.
2. No SQL in app/api/: families parse and render; queries live in the domain services.
3. No `Any` in engine and artifact signatures (app/engines/**): engines speak in protocols.

Exit status 1 with one line per violation.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"

SQL_IN_FAMILIES = re.compile(
    r"^\s*(from sqlalchemy|import sqlalchemy)|\bselect\(|\bsession\.(get|execute|scalars?|query)\("
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def app_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(APP.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, current: str, is_package: bool) -> Iterator[str]:
    """Module names imported anywhere in the module, except in TYPE_CHECKING blocks."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = current.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            yield prefix
            yield from (f"{prefix}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = set()
        for imported in _imports(tree, name, path.name == "__init__.py"):
            if imported in modules and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def sql_in_families() -> list[str]:
    found = []
    for path in sorted((APP / "api").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if SQL_IN_FAMILIES.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: SQL in a family: {line.strip()}")
    return found


def _mentions_any(annotation: ast.expr | None) -> bool:
    if annotation is None:
        return False
    return any(
        (isinstance(n, ast.Name) and n.id == "Any")
        or (isinstance(n, ast.Attribute) and n.attr == "Any")
        or (isinstance(n, ast.Constant) and isinstance(n.value, str) and re.search(r"\bAny\b", n.value))
        for n in ast.walk(annotation)
    )


def any_in_engine_signatures() -> list[str]:
    found = []
    for path in sorted((APP / "engines").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = node.args
                annotated = [a.annotation for a in args.posonlyargs + args.args + args.kwonlyargs]
                annotated += [a.annotation for a in (args.vararg, args.kwarg) if a is not None]
                if any(_mentions_any(a) for a in annotated) or _mentions_any(node.returns):
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    found.append(f"{where}: Any in the signature of {node.name}")
            elif isinstance(node, ast.AnnAssign) and _mentions_any(node.annotation):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: Any in an annotated field")
    return found


def main() -> int:
    cycles = import_cycles(import_graph(app_modules()))
    problems = [f"import circle: {' -> '.join(cycle)}" for cycle in cycles]
    problems += sql_in_families()
    problems += any_in_engine_signatures()
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
