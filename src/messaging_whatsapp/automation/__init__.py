"""Automation: intents found in what customers write, and the auto-reply rules (greeting buttons,
keywords, out-of-hours, no agent answer) that act on them."""
