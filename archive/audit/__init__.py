"""Auditor verification: re-hash what S3 holds, check every signature, recompute the log."""
