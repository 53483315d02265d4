"""The version of the code a stage runs, for its cache key: the source of every module of ours the
stage imports, transitively (imports inside functions too, since those run as well), read from
the files without importing them. Editing any of them invalidates the stage's cached results;
editing a module the stage never reaches does not."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from pathlib import Path

from schemas.provenance import emoforge_version

OURS = frozenset({"agents", "evidence", "flows", "pipeline", "schemas", "storage"})


def _package_root(top: str) -> Path | None:
    spec = importlib.util.find_spec(top)  # a top-level name only: nothing below it is imported
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]).parent


def _module_file(name: str, roots: dict[str, Path | None]) -> Path | None:
    top = name.split(".")[0]
    if top not in roots:
        roots[top] = _package_root(top)
    root = roots[top]
    if root is None:
        return None
    base = root.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imports(name: str, path: Path) -> set[str]:
    """Module names an import statement in `path` may load (for `from a import b`: a, and a.b in
    case b is a submodule)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            out.add(module)
            out.update(f"{module}.{alias.name}" for alias in node.names if alias.name != "*")
    return out


def modules_reached(roots: list[str], packages: frozenset[str] = OURS) -> dict[str, Path]:
    """Every module within `packages` that importing `roots` can load, with its file."""
    where: dict[str, Path | None] = {}
    found: dict[str, Path] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in found or name.split(".")[0] not in packages:
            continue
        path = _module_file(name, where)
        if path is None:
            continue  # `from a import f` where f is a function, not a module
        found[name] = path
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages run first
        todo.extend(_imports(name, path))
    return found


def code_version(roots: list[str], packages: frozenset[str] = OURS) -> str:
    """emoforge version + a hash of the source of every module `roots` reach."""
    h = hashlib.sha256()
    for name, path in sorted(modules_reached(roots, packages).items()):
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{emoforge_version()}+{h.hexdigest()[:12]}"
