"""The running-engine fixtures of tests/e2e, for the knowledge base's API tests."""

from tests.e2e.conftest import deployment, engine

__all__ = ["deployment", "engine"]
