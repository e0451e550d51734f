"""Alerts: per-tenant rules the scheduler evaluates; each alert raised once and resolved once."""
