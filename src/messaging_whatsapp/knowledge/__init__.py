"""The tenant's knowledge base: documents cut into chunks, searched by full text and by meaning."""
