"""Cases and their text records, linked to media and read on one corrected clock (issue 3)."""

# The legal-review gate (issue 12) guards every flush of a case or record, whoever writes it.
import archive.legal.gate  # noqa: F401
