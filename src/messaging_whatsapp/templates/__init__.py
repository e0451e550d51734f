"""WhatsApp message templates stored per tenant (synced from Meta, created for the simulator), and
the check every template send passes: it exists, it is approved, it gets every parameter."""
