"""The tests share their helpers from ``tests/helpers.py``: no test imports them from conftest
or from another test module, writes its own Authorization header, or keeps a copy of a shared
helper."""

from __future__ import annotations

import ast
from pathlib import Path

from qstash_emulator import Emulator

from .helpers import api, auth

TESTS = Path(__file__).parent
SHARED = {
    "auth",
    "_auth",
    "api",
    "request",
    "wait_until",
    "sdk",
    "free_port",
    "fake_redis",
    "error_of",
    "api_routes",
    "publish",
}


def _trees() -> dict[str, ast.Module]:
    """Every test module but the helpers and the fixtures, parsed."""
    skip = {"helpers.py", "conftest.py", "test_helpers.py"}
    return {
        p.name: ast.parse(p.read_text(encoding="utf-8"))
        for p in sorted(TESTS.glob("*.py"))
        if p.name not in skip
    }


def _bearer(node: ast.AST) -> bool:
    """``f"Bearer {token}"``: a whole Authorization value built by hand."""
    return (
        isinstance(node, ast.JoinedStr)
        and len(node.values) == 2
        and isinstance(node.values[0], ast.Constant)
        and node.values[0].value == "Bearer "
        and isinstance(node.values[1], ast.FormattedValue)
    )


def test_tests_import_helpers_from_the_helpers_module_only() -> None:
    found = []
    for name, tree in _trees().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level and node.module:
                if node.module in ("conftest", "servers") or node.module.startswith("test_"):
                    found.append(f"{name}:{node.lineno}: from {'.' * node.level}{node.module}")
    assert found == [], "import plain helpers from .helpers (fixtures need no import)"


def _hand_written(node: ast.AST) -> bool:
    """An Authorization header built by hand: in a dict (``{"Authorization": f"Bearer
    {t}"}``) or set on a client (``http.headers["Authorization"] = f"Bearer {t}"``)."""
    pairs: list[tuple[ast.expr | None, ast.expr]] = []
    if isinstance(node, ast.Dict):
        pairs = list(zip(node.keys, node.values, strict=True))
    elif isinstance(node, ast.Assign):
        pairs = [(t.slice, node.value) for t in node.targets if isinstance(t, ast.Subscript)]
    return any(
        isinstance(key, ast.Constant) and key.value == "Authorization" and _bearer(value)
        for key, value in pairs
    )


def test_no_test_writes_its_own_authorization_header_or_copies_a_helper() -> None:
    found = []
    for name, tree in _trees().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node in tree.body and node.name in SHARED:
                found.append(f"{name}:{node.lineno}: def {node.name} (use helpers.{node.name})")
            if _hand_written(node):
                found.append(f"{name}:{node.lineno}: use auth(...) or api(...)")
    assert found == []


def test_the_guard_sees_a_hand_written_header_and_a_copied_helper() -> None:
    tree = ast.parse('def _auth(e):\n    return {"Authorization": f"Bearer {e.token}"}\n')
    (fn,) = tree.body
    assert isinstance(fn, ast.FunctionDef) and fn.name in SHARED
    assert any(_hand_written(n) for n in ast.walk(tree))
    set_on_client = ast.parse('http.headers["Authorization"] = f"Bearer {emu.token}"')
    assert any(_hand_written(n) for n in ast.walk(set_on_client))
    assert not _bearer(ast.parse('f"Bearer {t}x"', mode="eval").body)  # a wrong token, on purpose


def test_auth_takes_an_emulator_a_user_or_a_token(emulator: Emulator) -> None:
    user = emulator.create_user()
    assert auth(emulator) == {"Authorization": f"Bearer {emulator.token}"}
    assert auth(user) == {"Authorization": f"Bearer {user.token}"}
    assert auth("t") == {"Authorization": "Bearer t"}


def test_api_is_authenticated_as_the_emulator_a_user_or_nobody(emulator: Emulator) -> None:
    user = emulator.create_user()
    with api(emulator) as http:
        assert http.get("/v2/keys").json()["current"] == emulator.current_signing_key
    with api(emulator, user) as http:
        assert http.get("/v2/keys").json()["current"] == user.current_signing_key
    with api(emulator, anonymous=True) as http:
        assert http.get("/v2/keys").status_code == 401
        assert "authorization" not in http.headers
