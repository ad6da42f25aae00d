"""Oversight of whole-process recording: early warnings, statistics, who accessed what."""
