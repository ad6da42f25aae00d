"""The `custody` command line."""
