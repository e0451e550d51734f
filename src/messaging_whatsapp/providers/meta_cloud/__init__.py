"""Meta WhatsApp Cloud API helpers that are not the webhook or the send adapter: the message
template registry of seed 001 (templates.py) and the template list of a WABA (management.py)."""
