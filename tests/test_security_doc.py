"""docs/security.md names the tests that prove each finding closed: each must exist, so a renamed
or deleted test cannot leave the security review pointing at nothing."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)((?:::\w+)?)`|`::(\w+)`")


def _references() -> list[tuple[str, str]]:
    found, last_file = [], None
    for match in REFERENCE.finditer((ROOT / "docs" / "security.md").read_text(encoding="utf-8")):
        path, test, bare = match.groups()
        if path:
            last_file = path
            found.append((path, test.lstrip(":")))
        else:  # `::name` continues the file named just before it
            assert last_file, f"`::{bare}` follows no test file"
            found.append((last_file, bare))
    return found


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_every_test_the_security_doc_names_exists():
    references = _references()
    assert len(references) >= 20
    for path, test in references:
        assert (ROOT / path).is_file(), f"docs/security.md names {path}, which does not exist"
        if test:
            assert test in _tests_in(ROOT / path), f"docs/security.md names {path}::{test}, which does not exist"
