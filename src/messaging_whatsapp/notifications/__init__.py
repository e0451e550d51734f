"""Events in (seed 001): events from the business's other systems (quote_created, order_status_changed,
delivery_started, delivery_completed) turned into template notifications through per-tenant
mappings."""
