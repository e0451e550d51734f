"""Who may call what: README.md's Roles table is the contract. Every API route is in it, and each
is called as an admin, a supervisor, an agent and as API keys of several roles and scopes; a 403
answers exactly where the table says the caller may not."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.conftest import RunningEngine, auth_headers
from tests.helpers import create_tenant

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(
    r"^\| `(GET|POST|PUT|PATCH|DELETE) (/api/v1/\S+)` \| (yes|—) \| (yes|—) \| (yes|—) \| (.+?) \|$"
)
ROLES = ("admin", "supervisor", "agent")
PUBLIC = {("POST", "/api/v1/auth/login")}
NOBODYS = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Rule:
    """One row of the table: the roles that may call a route and the scope it belongs to."""

    method: str
    path: str
    roles: frozenset[str]
    scope: str  # "any": every key, whatever its scopes


def _table() -> list[Rule]:
    rules = []
    for line in README.read_text(encoding="utf-8").splitlines():
        found = ROW.match(line)
        if found is None:
            continue
        method, path, *marks, scope = found.groups()
        roles = frozenset(role for role, mark in zip(ROLES, marks, strict=True) if mark == "yes")
        rules.append(Rule(method, path, roles, scope.strip("`")))
    return rules


async def _api_key(
    engine: RunningEngine, admin: dict[str, str], role: str, scopes: list[str] | None
) -> dict[str, str]:
    body = {"name": f"{role} {scopes}", "role": role, "scopes": scopes}
    created = await engine.http.post("/api/v1/api-keys", json=body, headers=admin)
    assert created.status_code == 201, created.text
    expected = sorted(scopes) if scopes is not None else None
    assert (created.json()["role"], created.json()["scopes"]) == (role, expected)
    return {"authorization": f"Bearer {created.json()['api_key']}"}


async def test_every_route_answers_403_exactly_where_the_roles_table_says(engine: RunningEngine) -> None:
    rules = _table()
    served = {
        (method.upper(), path)
        for path, operations in (await engine.http.get("/openapi.json")).json()["paths"].items()
        for method in operations
        if path.startswith("/api/")
    }
    assert {(rule.method, rule.path) for rule in rules} == served - PUBLIC

    tenant_id = await create_tenant(engine.context)
    admin = await auth_headers(engine, tenant_id, "ana@loja.com.br", role="admin")
    callers: dict[str, tuple[dict[str, str], str, frozenset[str] | None]] = {
        "admin": (admin, "admin", None),
        "supervisor": (
            await auth_headers(engine, tenant_id, "lia@loja.com.br", "supervisor"),
            "supervisor",
            None,
        ),
        "agent": (await auth_headers(engine, tenant_id, "bia@loja.com.br", "agent"), "agent", None),
        "agent key": (await _api_key(engine, admin, "agent", None), "agent", None),
    }
    for scopes in (["messages:send"], ["campaigns:read", "instances:read"], ["admin"]):
        key = await _api_key(engine, admin, "admin", scopes)
        callers[f"admin key {scopes}"] = (key, "admin", frozenset(scopes))
    key = await _api_key(engine, admin, "supervisor", ["conversations:write", "campaigns:write"])
    callers["supervisor key"] = (key, "supervisor", frozenset({"conversations:write", "campaigns:write"}))

    for rule in rules:
        # Ids nobody has and no body: a caller who may call the route gets a 404 or a 422, never a 403.
        path = re.sub(r"\{[^}]+\}", NOBODYS, rule.path)
        # The event stream lasts until its client leaves: narrowed to a conversation nobody has, it
        # answers 404 (or 403) at once.
        params = {"conversation_id": NOBODYS} if rule.path == "/api/v1/events/stream" else None
        for name, (headers, role, scopes) in callers.items():
            allowed = role in rule.roles and (scopes is None or rule.scope == "any" or rule.scope in scopes)
            answer = await engine.http.request(rule.method, path, headers=headers, params=params)
            assert answer.status_code < 500, (name, rule, answer.text)
            if allowed:
                assert answer.status_code != 403, (name, rule, answer.text)
            else:
                assert (answer.status_code, answer.json()["error"]["code"]) == (403, "forbidden"), (
                    name,
                    rule,
                )


async def test_an_api_key_cannot_outrank_or_name_unknown_scopes(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    admin = await auth_headers(engine, tenant_id)

    for body, code in (
        ({"name": "erp", "role": "owner"}, "validation_error"),
        ({"name": "erp", "scopes": "messages:send"}, "validation_error"),
        ({"name": "erp", "scopes": ["messages:send", "everything"]}, "invalid_input"),
    ):
        refused = await engine.http.post("/api/v1/api-keys", json=body, headers=admin)
        assert (refused.status_code, refused.json()["error"]["code"]) == (422, code), body
    assert "unknown scopes everything" in refused.json()["error"]["message"]

    # A scope does not lift a key above its role: an agent's key with a campaigns scope still cannot.
    agent_key = await _api_key(engine, admin, "agent", ["campaigns:read", "conversations:read"])
    assert (await engine.http.get("/api/v1/campaigns", headers=agent_key)).status_code == 403
    assert (await engine.http.get("/api/v1/conversations", headers=agent_key)).status_code == 200
    listed = (await engine.http.get("/api/v1/api-keys", headers=admin)).json()["items"]
    assert [(key["role"], key["scopes"]) for key in listed] == [
        ("agent", ["campaigns:read", "conversations:read"])
    ]


async def test_the_openapi_document_names_both_ways_in(engine: RunningEngine) -> None:
    document = (await engine.http.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert {name: scheme["bearerFormat"] for name, scheme in schemes.items()} == {
        "userToken": "JWT",
        "apiKey": "mwk_...",
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            guarded = path.startswith("/api/") and (method, path) != ("post", "/api/v1/auth/login")
            expected = [{"userToken": []}, {"apiKey": []}] if guarded else None
            assert operation.get("security") == expected, (method, path)
