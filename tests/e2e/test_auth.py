"""Logging in and staying logged in, on both deployments: weak passwords refused, failed logins
slowed down, tokens that must expire, and sessions that end the moment a user is deactivated,
demoted, deleted or given a new password."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import jwt

from messaging_whatsapp.tenancy.tokens import JWT_ALGORITHM, jwt_secret
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.helpers import create_tenant, create_user, wait_until

PASSWORD = "s3cret-pass"


async def _login(engine: RunningEngine, email: str, password: str = PASSWORD) -> httpx.Response:
    return await engine.http.post("/api/v1/auth/login", json={"email": email, "password": password})


async def test_common_guessable_and_personal_passwords_are_refused(engine: RunningEngine) -> None:
    admin = await auth_headers(engine, await create_tenant(engine.context))

    for password in (
        "12345678",
        "password",
        "Senha123",
        "mudar123",
        "        ",
        "bia@loja.com.br",
        "bia-loja-2026",
    ):
        body = {"email": "bia@loja.com.br", "password": password, "role": "agent"}
        refused = await engine.http.post("/api/v1/users", json=body, headers=admin)
        assert refused.status_code == 422, (password, refused.text)
        assert refused.json()["error"]["code"] in ("weak_password", "validation_error"), password

    body = {"email": "bia@loja.com.br", "password": "lanche de quinta no parque", "role": "agent"}
    created = await engine.http.post("/api/v1/users", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["role"] == "agent"
    assert "password" not in created.text
    assert (await _login(engine, "bia@loja.com.br", "lanche de quinta no parque")).status_code == 200


async def test_failed_logins_on_an_account_are_slowed_down_with_a_readable_429(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    await create_user(engine.context, tenant_id, "ana@loja.com.br")

    answers = [(await _login(engine, "ana@loja.com.br", "wrong-guess")).status_code for _ in range(6)]
    assert answers == [401] * 6
    # The right password too must wait now: the throttle does not tell guesses apart.
    throttled = await _login(engine, "ana@loja.com.br")
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "rate_limited"
    assert int(throttled.headers["retry-after"]) >= 1
    # Another account from the same address is not held back by this one's failures.
    await create_user(engine.context, tenant_id, "caio@loja.com.br")
    assert (await _login(engine, "caio@loja.com.br")).status_code == 200


async def test_a_token_without_expiry_is_refused(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    user_id = await create_user(engine.context, tenant_id, "ana@loja.com.br")
    claims = {"sub": user_id, "tenant_id": tenant_id, "role": "admin", "ver": 0}
    forever = jwt.encode(claims, jwt_secret(engine.settings), algorithm=JWT_ALGORITHM)
    expiring = jwt.encode(
        {**claims, "exp": int(time.time()) + 60}, jwt_secret(engine.settings), JWT_ALGORITHM
    )

    refused = await engine.http.get("/api/v1/tenant", headers={"authorization": f"Bearer {forever}"})
    assert refused.status_code == 401
    assert (
        await engine.http.get("/api/v1/tenant", headers={"authorization": f"Bearer {expiring}"})
    ).status_code == 200


async def test_deactivating_demoting_deleting_or_a_new_password_ends_sessions_at_once(
    engine: RunningEngine,
) -> None:
    tenant_id = await create_tenant(engine.context)
    admin = await auth_headers(engine, tenant_id, "chefe@loja.com.br")
    users = {}
    for name in ("deactivated", "demoted", "deleted", "repassworded"):
        email = f"{name}@loja.com.br"
        user_id = await create_user(engine.context, tenant_id, email)
        token = (await _login(engine, email)).json()["access_token"]
        users[name] = (user_id, {"authorization": f"Bearer {token}"})
        assert (await engine.http.get("/api/v1/api-keys", headers=users[name][1])).status_code == 200

    changes = [
        engine.http.post(f"/api/v1/users/{users['deactivated'][0]}/deactivate", headers=admin),
        engine.http.patch(f"/api/v1/users/{users['demoted'][0]}", json={"role": "agent"}, headers=admin),
        engine.http.delete(f"/api/v1/users/{users['deleted'][0]}", headers=admin),
        engine.http.patch(
            f"/api/v1/users/{users['repassworded'][0]}",
            json={"password": "outra senha bem longa"},
            headers=admin,
        ),
    ]
    for change in changes:
        assert (await change).status_code in (200, 204)

    for name, (_, headers) in users.items():
        # A deactivated admin must not mint an API key with the token it still holds.
        minted = await engine.http.post("/api/v1/api-keys", json={"name": "backdoor"}, headers=headers)
        assert minted.status_code == 401, (name, minted.text)
    assert (await _login(engine, "deactivated@loja.com.br")).status_code == 401
    assert (await _login(engine, "repassworded@loja.com.br", "outra senha bem longa")).status_code == 200
    listed = (await engine.http.get("/api/v1/users", headers=admin)).json()["items"]
    assert {user["email"]: user["is_active"] for user in listed}["deactivated@loja.com.br"] is False
    assert "deleted@loja.com.br" not in {user["email"] for user in listed}


async def test_users_are_an_admins_business_within_their_own_tenant(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    agent = await auth_headers(engine, tenant_id, "bia@loja.com.br", role="agent")
    stranger_id = await create_user(engine.context, await create_tenant(engine.context), "rui@outra.com.br")
    admin = await auth_headers(engine, tenant_id, "chefe@loja.com.br")

    assert (await engine.http.get("/api/v1/users", headers=agent)).status_code == 403
    assert (
        await engine.http.post(f"/api/v1/users/{stranger_id}/deactivate", headers=admin)
    ).status_code == 404
    assert (await engine.http.delete(f"/api/v1/users/{stranger_id}", headers=admin)).status_code == 404
    assert (await _login(engine, "rui@outra.com.br")).status_code == 200


async def test_deactivate_user_from_the_cli_ends_the_sessions_of_a_running_engine(
    engine: RunningEngine,
) -> None:
    tenant_id = await create_tenant(engine.context)
    # An agent: the tenant's only admin could not be deactivated (409 last_admin).
    user_id = await create_user(engine.context, tenant_id, "ana@loja.com.br", role="agent")
    headers = {"authorization": f"Bearer {(await _login(engine, 'ana@loja.com.br')).json()['access_token']}"}
    env = {"DATABASE_URL": engine.settings.database_url, "DATA_DIR": str(engine.settings.data_dir)}
    if engine.settings.redis_url:
        env["REDIS_URL"] = engine.settings.redis_url

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "messaging_whatsapp.cli",
            "deactivate-user",
            user_id,
            "--tenant-id",
            tenant_id,
            "--json",
        ],
        env={**_base_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"is_active": false' in done.stdout

    async def refused() -> bool:
        return (await engine.http.get("/api/v1/tenant", headers=headers)).status_code == 401

    await wait_until(refused, timeout=5, what="the deactivated user's token to be refused")


def _base_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "REDIS_"))}
