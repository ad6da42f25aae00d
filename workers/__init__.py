"""Celery app and tasks: thin shells around archive.ingest.pipeline."""
