"""Every table the archive has, for Alembic and for tests: import each domain's models here."""

import archive.accounts.models
import archive.approvals.models
import archive.audit.models
import archive.cases.models
import archive.copyout.models
import archive.coverage.models
import archive.ingest.models
import archive.ledger.models
import archive.legal.models
import archive.media.models
import archive.models
import archive.oversight.models
import archive.parties.models
import archive.publicity.models
import archive.restricted.models
import archive.signatures.models
import archive.workdays.models  # noqa: F401
