"""The gateways' click-to-WhatsApp ad (WhatsApp's contextInfo.externalAdReply) read as the normalised
referral Meta's `referral` gives: Evolution (Baileys' spelling, top-level or in the content) and
WuzAPI (whatsmeow's protobuf JSON spelling); a link preview's externalAdReply is no ad."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from messaging_whatsapp.providers.base import WebhookRequest
from messaging_whatsapp.providers.events import InboundMessage, Referral
from messaging_whatsapp.providers.evolution import evolution_provider
from messaging_whatsapp.providers.wuzapi import wuzapi_provider

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"
AD_URL = "https://fb.me/4Kq8ZpT2a?utm_source=facebook&utm_medium=paid&utm_campaign=frete_gratis"
EXPECTED = Referral(
    source_url=AD_URL,
    source_id="120210987654321098",
    source_type="ad",
    headline="Promoção de Novembro",
    click_id="ARAkLkA8rmlFeiCk",
)


def _fixture(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return payload


def _inbound(provider: Any, payload: dict[str, Any]) -> InboundMessage:
    request = WebhookRequest(
        body=json.dumps(payload).encode(), headers={"content-type": "application/json"}, url="https://x"
    )
    [event] = provider.parse(request)
    assert isinstance(event, InboundMessage)
    return event


def _baileys_ad() -> dict[str, Any]:
    return {
        "title": "Promoção de Novembro",
        "body": "Frete grátis para toda a capital nesta semana!",
        "mediaType": 1,
        "thumbnailUrl": "https://scontent.xx.fbcdn.net/v/t45.1600-4/x.jpg",
        "sourceType": "ad",
        "sourceId": "120210987654321098",
        "sourceUrl": AD_URL,
        "ctwaClid": "ARAkLkA8rmlFeiCk",
        "showAdAttribution": True,
    }


def test_evolution_reads_the_ad_of_a_top_level_context_info() -> None:
    payload = _fixture("evolution_messages_upsert_text.json")
    payload["data"]["contextInfo"] = {"externalAdReply": _baileys_ad(), "conversionSource": "FB_Ads"}
    assert _inbound(evolution_provider, payload).referral == EXPECTED


def test_evolution_reads_the_ad_inside_the_content() -> None:
    payload = _fixture("evolution_messages_upsert_text.json")
    text = "Olá! Tenho interesse e queria mais informações."
    payload["data"]["message"] = {
        "extendedTextMessage": {"text": text, "contextInfo": {"externalAdReply": _baileys_ad()}}
    }
    payload["data"]["messageType"] = "extendedTextMessage"
    message = _inbound(evolution_provider, payload)
    assert (message.text, message.referral) == (text, EXPECTED)


def test_a_link_preview_or_an_odd_field_is_no_ad_and_loses_no_message() -> None:
    payload = _fixture("evolution_messages_upsert_text.json")
    preview = {"title": "Loja", "sourceUrl": "https://loja.example/p", "mediaType": 1}
    payload["data"]["contextInfo"] = {"externalAdReply": preview}
    assert _inbound(evolution_provider, payload).referral is None
    payload["data"]["contextInfo"] = {"externalAdReply": {"sourceId": 12, "ctwaClid": "C1", "title": ["x"]}}
    referral = _inbound(evolution_provider, payload).referral
    assert referral == Referral(click_id="C1")


def test_wuzapi_reads_whatsmeows_external_ad_reply() -> None:
    payload = _fixture("wuzapi_message.json")
    ad = {
        "title": "Promoção de Novembro",
        "body": "Frete grátis",
        "mediaType": 1,
        "thumbnailURL": "https://scontent.xx.fbcdn.net/v/t45.1600-4/x.jpg",
        "sourceType": "ad",
        "sourceID": "120210987654321098",
        "sourceURL": AD_URL,
        "ctwaClid": "ARAkLkA8rmlFeiCk",
    }
    message = {
        "extendedTextMessage": {"text": "Quero o frete grátis", "contextInfo": {"externalAdReply": ad}}
    }
    payload["event"]["Message"] = message
    payload["event"]["RawMessage"] = message
    parsed = _inbound(wuzapi_provider, payload)
    assert (parsed.text, parsed.referral) == ("Quero o frete grátis", EXPECTED)


def test_our_own_echo_carries_no_referral() -> None:
    payload = _fixture("wuzapi_message_fromme.json")
    text = payload["event"]["Message"]["extendedTextMessage"]
    text["contextInfo"] = {"externalAdReply": {"sourceID": "1", "sourceType": "ad"}}
    assert _inbound(wuzapi_provider, payload).referral is None
