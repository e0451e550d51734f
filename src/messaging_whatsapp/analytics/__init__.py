"""Analytics: delivery and volume figures counted from the messages, kept hour by hour."""
