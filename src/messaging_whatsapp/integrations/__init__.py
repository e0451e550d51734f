"""Events out over HTTP: tenants subscribe URLs to event types; each event is delivered signed by
the Standard Webhooks convention and retried with backoff."""
