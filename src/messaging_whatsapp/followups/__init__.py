"""Follow-ups (seed 003): sequences of messages sent on a quiet ticket until the customer answers,
and single messages scheduled to be sent at a given time."""
