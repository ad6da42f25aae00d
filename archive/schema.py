"""Every table the archive has, for Alembic and for tests: import each domain's models here."""

import archive.cases.models
import archive.ledger.models
import archive.models  # noqa: F401
