"""Changing a bound number's credentials and settings, unbinding it and binding it again, as the
webhook's cache and the sender see it, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.errors import Conflict, InvalidInput
from messaging_whatsapp.instances import bindings
from messaging_whatsapp.instances.models import InstanceStatus, WhatsAppInstance
from messaging_whatsapp.instances.resolver import InstanceResolver
from messaging_whatsapp.instances.schemas import InstanceUpdate
from messaging_whatsapp.instances.service import decrypt_credentials, set_instance_status
from messaging_whatsapp.providers.base import ProviderName
from tests.helpers import META_APP_SECRET, META_PHONE_NUMBER_ID, bind, create_tenant


async def _update(
    context: EngineContext, tenant_id: str, instance_id: str, **changes: object
) -> WhatsAppInstance:
    async with context.sessions() as session, session.begin():
        return await bindings.update_instance(
            session, context.cipher, context.settings, tenant_id, instance_id, InstanceUpdate(**changes)
        )


async def _unbind(context: EngineContext, tenant_id: str, instance_id: str) -> WhatsAppInstance:
    async with context.sessions() as session, session.begin():
        return await bindings.unbind_instance(session, context.cipher, tenant_id, instance_id)


@pytest.fixture
def resolver(context: EngineContext, monkeypatch: pytest.MonkeyPatch) -> InstanceResolver:
    """The webhook's cache, looking at the table's fingerprint on every lookup (as it does once a
    second in production)."""
    monkeypatch.setattr(InstanceResolver, "FINGERPRINT_INTERVAL", 0.0)
    return InstanceResolver.for_context(context)


async def test_new_credentials_and_settings_reach_the_webhook_cache(
    context: EngineContext, resolver: InstanceResolver
) -> None:
    tenant_id = await create_tenant(context)
    meta, _ = await bind(
        context,
        tenant_id,
        provider="meta",
        display_number="+551140028922",
        phone_number_id=META_PHONE_NUMBER_ID,
        access_token="EAAG-expired",
        app_secret=META_APP_SECRET,
        verify_token="vt-1",
    )
    cached = await resolver.by_routing_key(ProviderName.META, META_PHONE_NUMBER_ID)
    assert cached is not None
    assert cached.secrets.verify_token == "vt-1"

    changed = await _update(
        context,
        tenant_id,
        meta.id,
        access_token="EAAG-renewed",
        verify_token=None,
        phone_number_id="200000000000002",
        daily_limit=50,
        timezone="America/Manaus",
    )
    assert (changed.daily_limit, changed.timezone, changed.routing_key) == (
        50,
        "America/Manaus",
        "200000000000002",
    )
    assert "EAAG-renewed" not in changed.credentials_encrypted
    credentials = decrypt_credentials(changed, context.cipher)
    assert (credentials["access_token"], credentials["app_secret"]) == ("EAAG-renewed", META_APP_SECRET)
    assert "verify_token" not in credentials
    assert await resolver.by_routing_key(ProviderName.META, META_PHONE_NUMBER_ID) is None
    moved = await resolver.by_routing_key(ProviderName.META, "200000000000002")
    assert moved is not None
    assert moved.id == meta.id
    assert moved.secrets.verify_token is None


REFUSED_CHANGES: list[tuple[dict[str, object], str, str]] = [
    ({"auth_token": "x"}, "invalid_input", "auth_token: not a setting of a meta number"),
    ({"access_token": None}, "invalid_input", "access_token: cannot be null"),
    ({"timezone": "Mars/Olympus"}, "invalid_timezone", "unknown time zone"),
    ({"display_number": "12"}, "invalid_phone", "display number"),
]


async def test_a_change_that_does_not_fit_the_provider_is_refused(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    meta, _ = await bind(
        context,
        tenant_id,
        provider="meta",
        display_number="+551140028922",
        phone_number_id=META_PHONE_NUMBER_ID,
        access_token="EAAG",
        app_secret=META_APP_SECRET,
    )
    for changes, code, message in REFUSED_CHANGES:
        with pytest.raises(InvalidInput, match=message) as refused:
            await _update(context, tenant_id, meta.id, **changes)
        assert refused.value.code == code


async def test_a_gateway_moved_to_a_private_address_or_onto_another_binding_is_refused(
    context: EngineContext,
) -> None:
    context.settings.outbound_allow_private = False
    tenant_id = await create_tenant(context)
    options = {
        "provider": "evolution",
        "display_number": "+551140028922",
        "api_url": "https://evo.example.com",
    }
    first, _ = await bind(context, tenant_id, instance_name="loja", api_key="k1", **options)
    await bind(context, tenant_id, instance_name="outra", api_key="k2", **options)

    with pytest.raises(InvalidInput, match="not on the public internet"):
        await _update(context, tenant_id, first.id, api_url="http://169.254.169.254/latest")
    with pytest.raises(ValueError, match="api_url must be http"):
        InstanceUpdate(api_url="file:///etc/passwd")
    with pytest.raises(Conflict, match="already bound"):
        await _update(context, tenant_id, first.id, instance_name="outra")
    moved = await _update(context, tenant_id, first.id, api_url="https://evo2.example.com/", api_key="k3")
    assert (moved.api_url, decrypt_credentials(moved, context.cipher)["api_key"]) == (
        "https://evo2.example.com",
        "k3",
    )


async def test_unbinding_closes_the_webhook_and_binding_again_brings_the_number_back(
    context: EngineContext, resolver: InstanceResolver
) -> None:
    tenant_id = await create_tenant(context)
    options = {"provider": "simulator", "display_number": "+551140028922", "instance_name": "sim"}
    instance, old_url = await bind(context, tenant_id, **options)
    old_secret = decrypt_credentials(instance, context.cipher)["webhook_secret"]
    assert await resolver.by_id(instance.id) is not None

    unbound = await _unbind(context, tenant_id, instance.id)
    assert unbound.status == InstanceStatus.UNBOUND.value
    assert decrypt_credentials(unbound, context.cipher)["webhook_secret"] != old_secret
    assert await resolver.by_id(instance.id) is None
    assert await resolver.by_routing_key(ProviderName.SIMULATOR, "sim") is None
    async with context.sessions() as session, session.begin():
        with pytest.raises(Conflict, match="unbound"):
            await set_instance_status(session, tenant_id, instance.id, InstanceStatus.ACTIVE)
    with pytest.raises(Conflict, match="unbound"):
        await _update(context, tenant_id, instance.id, daily_limit=5)

    again, new_url = await bind(context, tenant_id, **options)
    assert again.id == instance.id
    assert again.status == InstanceStatus.ACTIVE.value
    assert new_url != old_url
    assert await resolver.by_id(instance.id) is not None

    # Another business may bind a number its last owner unbound; the old instance keeps its history.
    await _unbind(context, tenant_id, instance.id)
    other_tenant = await create_tenant(context, "Outra Loja")
    theirs, _ = await bind(context, other_tenant, **options)
    assert theirs.id != instance.id
    found = await resolver.by_routing_key(ProviderName.SIMULATOR, "sim")
    assert found is not None
    assert found.tenant_id == other_tenant
    async with context.sessions() as session:
        rows = (await session.execute(select(WhatsAppInstance.tenant_id, WhatsAppInstance.status))).all()
    assert sorted(rows) == sorted([(tenant_id, "unbound"), (other_tenant, "active")])
