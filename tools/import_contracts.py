"""An import-linter contract of our own: no module uses another module's private names.

import-linter sees which modules import which, not which names: `from ...inbox.receipts import
_keep_orphans` is an import of an allowed module. A private name (`_name`) is the owning module's
to change at will; using it from elsewhere couples two modules in a way no layer shows. This
contract reads each module's source and refuses `from x import _name`, `import x._module`, and
`x._name` on a module imported whole. Dunder names are public by convention and allowed.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import grimp
from importlinter import Contract, ContractCheck, fields, output


@dataclass(frozen=True, slots=True)
class PrivateUse:
    """One use of another module's private name."""

    importer: str
    line: int
    target: str
    name: str

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} uses {self.target}.{self.name}"


class PrivateNamesContract(Contract):
    """No module of `containers` imports or reads a private name of another module of theirs."""

    type_name = "private_names"

    containers = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        """Read every module of the containers and list each use of another module's private name."""
        roots: list[str] = self.containers  # type: ignore[assignment]
        modules = sorted(m for m in graph.modules if any(m == r or m.startswith(r + ".") for r in roots))
        known = set(modules)
        uses = [use for module in modules for use in _private_uses(module, known)]
        return ContractCheck(kept=not uses, metadata={"uses": [str(use) for use in uses]})

    def render_broken_contract(self, check: ContractCheck) -> None:
        """Each use, one a line, with where it is."""
        for use in check.metadata["uses"]:
            output.print_error(f"- {use}", bold=False)
            output.new_line()


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _source(module: str) -> str | None:
    """The module's source, found from its top package's directory: nothing is imported (a package's
    `__init__` may import half the code base, and a linter must not run it)."""
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations))).joinpath(*rest)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return None


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The module an ImportFrom names, made absolute."""
    if not node.level:
        return node.module or ""
    package = module.split(".")[: -node.level]
    return ".".join([*package, node.module] if node.module else package)


def _private_uses(module: str, known: set[str]) -> list[PrivateUse]:
    source = _source(module)
    if source is None:
        return []
    uses: list[PrivateUse] = []
    # Local names bound to one of our modules (`from pkg import mod`, `import pkg.mod as mod`).
    aliases: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            target = _absolute(module, node)
            if target not in known or target == module:
                continue
            for alias in node.names:
                if f"{target}.{alias.name}" in known:
                    aliases[alias.asname or alias.name] = f"{target}.{alias.name}"
                if _is_private(alias.name):
                    uses.append(PrivateUse(module, node.lineno, target, alias.name))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                private = next((i for i, part in enumerate(parts) if _is_private(part)), None)
                if alias.name in known and private is not None:
                    owner = ".".join(parts[:private])
                    uses.append(PrivateUse(module, node.lineno, owner, parts[private]))
                if alias.asname and alias.name in known:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and aliases[node.value.id] != module
            and _is_private(node.attr)
        ):
            uses.append(PrivateUse(module, node.lineno, aliases[node.value.id], node.attr))
    return uses
