"""Cases and their text records, linked to media and read on one corrected clock (issue 3)."""
