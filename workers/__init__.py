"""Celery app and tasks: thin shells around archive.pipeline."""
