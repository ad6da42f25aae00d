"""Evidence export: a zip a court can check offline with ``verify_export.py`` alone."""
