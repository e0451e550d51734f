"""Every stored credential under the newest key (rotate-keys), and an engine that will not open
with keys that do not fit the stored credentials, on both databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from messaging_whatsapp.assistant.models import AssistantSettings
from messaging_whatsapp.assistant.schemas import SettingsUpdate
from messaging_whatsapp.assistant.service import update_settings
from messaging_whatsapp.config import Settings
from messaging_whatsapp.consent.suppression import tenant_key
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.crypto import (
    Cipher,
    CredentialsError,
    key_id,
    new_key,
    read_key_file,
    token_key_id,
    write_key_file,
)
from messaging_whatsapp.crypto.stored import rotate_all
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.instances.service import decrypt_credentials
from messaging_whatsapp.tenancy.models import Tenant
from tests.helpers import bind, create_tenant


@pytest.fixture(params=["fresh_sqlite_url", "fresh_postgres_url"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings on a database of this test's own, with the key file in tmp_path."""
    return Settings(_env_file=None, database_url=request.getfixturevalue(request.param), data_dir=tmp_path)  # type: ignore[call-arg]


async def _stored(context: EngineContext) -> list[str]:
    async with context.sessions() as session:
        instances = list(await session.scalars(select(WhatsAppInstance.credentials_encrypted)))
        keys = list(
            await session.scalars(select(Tenant.suppression_key).where(Tenant.suppression_key.is_not(None)))
        )
        ai_keys = [key for key in await session.scalars(select(AssistantSettings.api_key_encrypted)) if key]
    return instances + keys + ai_keys


async def _data(context: EngineContext) -> tuple[str, str]:
    """A tenant with a suppression key and two numbers; the tenant's id and the Twilio number's."""
    tenant_id = await create_tenant(context)
    twilio, _ = await bind(
        context,
        tenant_id,
        provider="twilio",
        display_number="+551140028922",
        account_sid="AC1",
        auth_token="t" * 32,
    )
    await bind(context, tenant_id, provider="simulator", display_number="+551140028923", instance_name="sim")
    async with context.sessions() as session, session.begin():
        await tenant_key(session, tenant_id, create=True)
        await update_settings(
            session, context.cipher, tenant_id, SettingsUpdate(api_key="sk-tenant-ai-key"), utcnow()
        )
    return tenant_id, twilio.id


async def test_rotation_puts_every_credential_under_the_new_key_and_the_old_one_can_go(
    settings: Settings, tmp_path: Path
) -> None:
    context = await EngineContext.open(settings)
    try:
        tenant_id, twilio_id = await _data(context)
        async with context.sessions() as session:
            suppression = await tenant_key(session, tenant_id)
        old = read_key_file(tmp_path / "encryption.key")
        async with context.sessions() as session, session.begin():
            # As an engine from before key ids stored it: a bare Fernet token.
            twilio = await session.get(WhatsAppInstance, twilio_id)
            assert twilio is not None
            plain = json.dumps(decrypt_credentials(twilio, context.cipher))
            twilio.credentials_encrypted = Fernet(old[0].encode()).encrypt(plain.encode()).decode()
        fresh = new_key()
        write_key_file(tmp_path / "encryption.key", [fresh, *old])

        report = await rotate_all(context.engine, context.cipher, batch_size=2)
        assert [(r.label, r.values, r.rotated) for r in report] == [
            ("instance credentials", 2, 2),
            ("tenant suppression keys", 1, 1),
            ("webhook subscription secrets", 0, 0),
            ("tenant AI keys", 1, 1),
        ]
        assert {token_key_id(value) for value in await _stored(context)} == {key_id(fresh)}
        again = await rotate_all(context.engine, context.cipher)
        assert [(r.rotated, r.already_current) for r in again] == [(0, 2), (0, 1), (0, 0), (0, 1)]
    finally:
        await context.close()

    # The old key retired: an engine with only the new key opens and reads everything.
    write_key_file(tmp_path / "encryption.key", [fresh])
    context = await EngineContext.open(settings)
    try:
        async with context.sessions() as session:
            assert await tenant_key(session, tenant_id) == suppression
            twilio = await session.get(WhatsAppInstance, twilio_id)
            assert twilio is not None
            assert decrypt_credentials(twilio, Cipher([fresh]))["auth_token"] == "t" * 32
    finally:
        await context.close()


async def test_an_engine_refuses_to_open_without_the_key_its_credentials_need(
    settings: Settings, tmp_path: Path
) -> None:
    context = await EngineContext.open(settings)
    try:
        await _data(context)
        needed = context.cipher.newest_key_id
    finally:
        await context.close()
    key_file = tmp_path / "encryption.key"
    key_file.rename(tmp_path / "elsewhere.key")

    with pytest.raises(
        CredentialsError,
        match=(
            f"2 instance credentials and 1 tenant AI keys and 1 tenant suppression keys "
            f"encrypted with key {needed}"
        ),
    ):
        await EngineContext.open(settings)
    assert not key_file.exists(), "no new key while credentials are encrypted"

    write_key_file(key_file, [new_key()])
    with pytest.raises(CredentialsError, match=f"key {needed}.*not among the configured keys"):
        await EngineContext.open(settings)

    # With the key back (older keys after the newest), it opens.
    write_key_file(key_file, [*read_key_file(key_file), *read_key_file(tmp_path / "elsewhere.key")])
    context = await EngineContext.open(settings)
    await context.close()
