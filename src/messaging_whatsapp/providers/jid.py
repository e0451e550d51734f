"""WhatsApp JIDs as the WhatsApp-Web gateways (Evolution/Baileys, WuzAPI/whatsmeow) report them.

A JID is ``user[.agent|_agent][:device]@server``: ``5511987654321@s.whatsapp.net`` (a phone),
``5511987654321:12@s.whatsapp.net`` (one of its devices), ``97318254610077@lid`` (a LID, WhatsApp's
privacy alias that hides the phone), ``120363041234567890@g.us`` (a group), ``status@broadcast``,
``…@newsletter`` (a channel). Both gateways pair a LID with the phone JID in an "alt" field
(Evolution ``remoteJidAlt``, whatsmeow ``SenderAlt``/``RecipientAlt``), in either direction.
"""

from __future__ import annotations

from dataclasses import dataclass

from messaging_whatsapp.providers.events import IgnoredReason

PHONE_SERVERS = frozenset({"s.whatsapp.net", "c.us", "hosted"})
LID_SERVERS = frozenset({"lid", "hosted.lid"})
GROUP_SERVER = "g.us"
BROADCAST_SERVER = "broadcast"
NEWSLETTER_SERVER = "newsletter"


def split_jid(jid: str) -> tuple[str, str]:
    """(user, server) of a JID, the user without its agent/device suffix; a bare user has server ""."""
    user, at, server = jid.strip().rpartition("@")
    if not at:
        # No "@": whatsmeow prints a server-only JID as just the server ("broadcast"); a bare
        # number is what a caller hands in by hand. Treat it as a user without a server.
        user, server = server, ""
    # whatsmeow writes "user.agent:device", Baileys "user_agent:device": the person is the part before.
    for separator in (":", ".", "_"):
        user = user.split(separator, 1)[0]
    return user, server.lower()


def jid_server(jid: str) -> str:
    """The server part of a JID, lower-cased ("" when there is none)."""
    return split_jid(jid)[1]


def is_group(jid: str) -> bool:
    """True for a group chat JID (``…@g.us``)."""
    return jid_server(jid) == GROUP_SERVER


def is_broadcast(jid: str) -> bool:
    """True for status updates and broadcast lists (``status@broadcast``, ``…@broadcast``)."""
    return jid_server(jid) == BROADCAST_SERVER


def is_newsletter(jid: str) -> bool:
    """True for a WhatsApp channel (``…@newsletter``)."""
    return jid_server(jid) == NEWSLETTER_SERVER


def is_lid(jid: str) -> bool:
    """True for a LID (``…@lid``), the alias that stands in for a phone number."""
    return jid_server(jid) in LID_SERVERS


def phone_digits(jid: str) -> str | None:
    """The phone number of a person's JID as digits, or None when the JID is not a phone JID."""
    user, server = split_jid(jid)
    if server not in PHONE_SERVERS or not (user.isascii() and user.isdigit()):
        return None
    return user


def ignored_reason(jid: str) -> IgnoredReason | None:
    """Why a chat JID is out of scope for 1:1 messaging (group, broadcast/newsletter), else None."""
    if is_group(jid):
        return IgnoredReason.GROUP
    if is_broadcast(jid) or is_newsletter(jid):
        return IgnoredReason.BROADCAST
    return None


@dataclass(frozen=True, slots=True)
class Person:
    """Who a 1:1 chat is with: phone digits and the person's LID JID, as far as the payload names them
    (at least one of the two)."""

    phone: str | None
    lid: str | None


def resolve_person(main: str | None, alt: str | None) -> Person | None:
    """Pick the phone from the main JID, or from the alternate one when the main is a LID.

    The LID (whichever side carries it) is kept: a person who hides their phone is known by it
    alone (the contact is keyed by LID until a payload pairs it with a phone). None when the
    payload names neither a phone nor a LID.
    """
    main, alt = main or "", alt or ""
    phone = phone_digits(alt) if is_lid(main) else phone_digits(main)
    lid = next((jid for jid in (main, alt) if jid and is_lid(jid)), None)
    if phone is None and lid is None:
        return None
    return Person(phone=phone, lid=_bare_lid(lid) if lid else None)


def _bare_lid(jid: str) -> str:
    # Drop the device part so every device of the same person maps to one LID.
    user, server = split_jid(jid)
    return f"{user}@{server}"


def chat_jid(person: str) -> str:
    """The JID of a one-to-one chat with a person addressed as E.164 digits (a leading '+'
    tolerated) or already by a JID (a LID)."""
    person = person.strip()
    return person if "@" in person else f"{person.removeprefix('+')}@s.whatsapp.net"
