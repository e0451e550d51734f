"""AI replies grounded in the tenant's knowledge base: drafts for agents, or automatic answers."""
