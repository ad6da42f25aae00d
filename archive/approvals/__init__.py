"""Two-person approval (issue 10, finding 4): clearing a permanent retention flag, releasing a legal
hold, unlinking evidence from a case and changing the retention policy are asked for with a reason
and carried out only when a second person with the right role approves (docs/security.md)."""
