"""FastAPI app: the HTTP surface of the archive."""
