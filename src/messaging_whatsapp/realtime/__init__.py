"""Real-time events for browsers and API clients: fan-out of committed events, per tenant."""
