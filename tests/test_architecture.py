"""The pure layers (`swimguard.protocol`, `swimguard.wire`) stay pure.

They must not import IO, clock or concurrency modules, and must not draw from
the module-level `random` functions (randomness is an injected `random.Random`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "swimguard"
PURE_PACKAGES = ("protocol", "wire")
FORBIDDEN_MODULES = {"asyncio", "socket", "time", "threading", "selectors", "multiprocessing",
                     "subprocess", "concurrent", "signal", "trio", "anyio"}
# `random.Random` (the class, for type hints and construction by callers) is fine.
ALLOWED_RANDOM_NAMES = {"Random"}


def _pure_files() -> list[Path]:
    files: list[Path] = []
    for pkg in PURE_PACKAGES:
        files.extend(sorted((SRC / pkg).rglob("*.py")))
    return files


def violations(source: str) -> list[str]:
    """Every forbidden import or module-level random use in `source`."""
    tree = ast.parse(source)
    found: list[str] = []
    random_aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                if root in FORBIDDEN_MODULES:
                    found.append(f"line {node.lineno}: import {alias.name}")
                if alias.name == "random":
                    random_aliases.add(alias.asname or "random")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            root = module.split(".")[0]
            if node.level == 0 and root in FORBIDDEN_MODULES:
                found.append(f"line {node.lineno}: from {module} import ...")
            if node.level == 0 and module == "random":
                for alias in node.names:
                    if alias.name not in ALLOWED_RANDOM_NAMES:
                        found.append(f"line {node.lineno}: from random import {alias.name}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in random_aliases
            and node.attr not in ALLOWED_RANDOM_NAMES
        ):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_pure_packages_exist() -> None:
    files = _pure_files()
    assert any(f.parent.name == "protocol" for f in files)
    assert any(f.parent.name == "wire" for f in files)


@pytest.mark.parametrize("path", _pure_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_io_clock_or_global_random(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "import asyncio",
        "import socket as s",
        "from time import monotonic",
        "import threading",
        "from selectors import DefaultSelector",
        "import time.something",
        "import random\nx = random.random()",
        "import random as r\nr.shuffle([])",
        "from random import choice",
        "import random\nf = random.randrange",
    ],
)
def test_checker_catches(source: str) -> None:
    assert violations(source), source


@pytest.mark.parametrize(
    "source",
    [
        "import random\ndef f(rng: random.Random) -> None: rng.random()",
        "from random import Random",
        "import os\nos.urandom(12)",
        "from . import time_utils",
    ],
)
def test_checker_allows(source: str) -> None:
    assert violations(source) == []
