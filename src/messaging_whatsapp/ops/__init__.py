"""The operator's view: streams, the dead-letter queue, workers and the outbox, for platform admins."""
