"""Enforcement publicity (行政执法公示, issue 14). See archive.publicity.services."""
