"""Whole-process recording: the recording-item list (音像记录事项清单) and the coverage of each text
record by the recordings linked to its case."""
