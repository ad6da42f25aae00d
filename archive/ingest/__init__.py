"""Ingest: tus uploads, case attachments and the verify -> probe -> derive -> sign pipeline."""
