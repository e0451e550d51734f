"""Our own import-linter contract: it finds every way of using another module's private names,
and nothing else."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest
from tools.import_contracts import PrivateNamesContract

SOURCES = {
    "__init__.py": "",
    "owner.py": "_hidden = 1\nshown = 2\n__version__ = '1'\n\n\ndef _helper() -> None: ...\n",
    "_private_module.py": "value = 1\n",
    "user.py": (
        "from shop import owner\n"
        "from shop.owner import _helper, shown, __version__\n"
        "import shop._private_module\n\n"
        "print(owner._hidden, owner.shown, _helper, shown, __version__, shop._private_module.value)\n"
    ),
    "clean.py": "from shop.owner import shown\nfrom .owner import shown as again\n\nprint(shown, again)\n",
    "relative.py": "from .owner import _hidden\n\nprint(_hidden)\n",
}


@pytest.fixture
def package(tmp_path: Path) -> Iterator[str]:
    """A throwaway package `shop` on sys.path."""
    root = tmp_path / "shop"
    root.mkdir()
    for name, source in SOURCES.items():
        (root / name).write_text(source)
    sys.path.insert(0, str(tmp_path))
    try:
        yield "shop"
    finally:
        sys.path.remove(str(tmp_path))
        for module in [m for m in sys.modules if m == "shop" or m.startswith("shop.")]:
            del sys.modules[module]


def test_every_use_of_another_modules_private_name_is_reported(package: str) -> None:
    contract = PrivateNamesContract("private names", {}, {"containers": [package]})

    check = contract.check(grimp.build_graph(package, cache_dir=None), verbose=False)

    assert not check.kept
    assert sorted(check.metadata["uses"]) == [
        "shop.relative:1 uses shop.owner._hidden",
        "shop.user:2 uses shop.owner._helper",
        "shop.user:3 uses shop._private_module",
        "shop.user:5 uses shop.owner._hidden",
    ]


def test_a_package_without_such_uses_keeps_the_contract(package: str, tmp_path: Path) -> None:
    for name in ("user.py", "relative.py"):
        (tmp_path / "shop" / name).unlink()
    contract = PrivateNamesContract("private names", {}, {"containers": [package]})

    check = contract.check(grimp.build_graph(package, cache_dir=None), verbose=False)

    assert check.kept, check.metadata
