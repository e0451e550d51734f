"""A tenant always keeps an active admin, even when two admins step down at the same moment; and a
credential's check (what an open event stream asks) follows deactivation and revocation. On
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.errors import Conflict
from messaging_whatsapp.tenancy import service, users
from messaging_whatsapp.tenancy.access import Principal
from messaging_whatsapp.tenancy.deps import credentials_hold
from messaging_whatsapp.tenancy.models import User
from tests.helpers import create_tenant, create_user


async def _demote(context: EngineContext, tenant_id: str, user_id: str, started: asyncio.Event) -> str:
    """Demote the user in a transaction of its own; "done" or the refusal's code."""
    async with context.sessions() as session, session.begin():
        started.set()
        try:
            await users.update_user(session, tenant_id, user_id, role="agent")
        except Conflict as refused:
            return refused.code
        # Held open a moment: the other demotion runs into this one.
        await asyncio.sleep(0.2)
    return "done"


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    ana = await create_user(context, tenant_id, "ana@loja.com.br")
    rui = await create_user(context, tenant_id, "rui@loja.com.br")

    first_started = asyncio.Event()
    first = asyncio.create_task(_demote(context, tenant_id, ana, first_started))
    await first_started.wait()
    second = await _demote(context, tenant_id, rui, asyncio.Event())

    assert sorted([await first, second]) == ["done", "last_admin"]
    async with context.sessions() as session:
        listed = await users.list_users(session, tenant_id)
    assert [user.role for user in listed].count("admin") == 1


async def test_an_inactive_admin_may_be_demoted_and_other_tenants_admins_do_not_count(
    context: EngineContext,
) -> None:
    tenant_id = await create_tenant(context)
    ana = await create_user(context, tenant_id, "ana@loja.com.br")
    rui = await create_user(context, tenant_id, "rui@loja.com.br")
    await create_user(context, await create_tenant(context, "Outra"), "lia@outra.com.br")

    async with context.sessions() as session, session.begin():
        await users.deactivate_user(session, tenant_id, rui)
        # An inactive admin is not the admin the tenant keeps, but stepping them down is fine.
        await users.update_user(session, tenant_id, rui, role="supervisor")
    async with context.sessions() as session, session.begin():
        with pytest.raises(Conflict) as refused:
            await users.delete_user(session, tenant_id, ana)
    assert refused.value.code == "last_admin"
    assert "ana@loja.com.br" in refused.value.message


async def test_credentials_stop_holding_when_the_user_is_deactivated_or_the_key_revoked(
    context: EngineContext,
) -> None:
    tenant_id = await create_tenant(context)
    await create_user(context, tenant_id, "ana@loja.com.br")
    bia = await create_user(context, tenant_id, "bia@loja.com.br", role="agent")
    async with context.sessions() as session, session.begin():
        key, _raw = await service.create_api_key(session, tenant_id, "painel")
    as_bia = Principal(tenant_id=tenant_id, role="agent", user_id=bia, token_version=0)
    as_key = Principal(tenant_id=tenant_id, role="admin", api_key_id=key.id)
    assert await credentials_hold(context.sessions, as_bia)
    assert await credentials_hold(context.sessions, as_key)

    async with context.sessions() as session, session.begin():
        await users.deactivate_user(session, tenant_id, bia)
        await service.revoke_api_key(session, tenant_id, key.id)

    assert not await credentials_hold(context.sessions, as_bia)
    assert not await credentials_hold(context.sessions, as_key)
    gone = Principal(tenant_id=tenant_id, role="admin", api_key_id="no-such-key")
    assert not await credentials_hold(context.sessions, gone)
    async with context.sessions() as session:
        assert (await session.get(User, bia)) is not None
