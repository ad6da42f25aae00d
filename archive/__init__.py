"""Custody domain core: models, storage, hashing, signing and the custody log.

This package imports neither FastAPI nor Celery: the API, the workers and the
retention sweeps are thin shells around the functions defined here.
"""
