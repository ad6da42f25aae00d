"""Classification (facts -> decision), enforcement in S3, the sweep and its report: retention's
services, one name for callers over ``classify``, ``enforce`` and ``sweep``. What people (rather
than the sweeps and the CLI) ask of retention goes through ``retention.actions``.

Classification is a pure function of facts and the policy. Facts: the recording time on the
corrected clock, reviewers' flags (each with a reason), legal holds, the recorder's "important"
mark and whether a reviewer has looked, and the cases the item is linked to. It is recomputed
whenever a fact changes, and again inside the sweep's lock before anything is deleted.
"""

from retention.classify import (
    FACT_EVENTS,
    SWEEP_ACTOR,
    Applied,
    CaseFact,
    Decision,
    Facts,
    classify,
    current_policy,
    gather_facts,
    set_policy,
)
from retention.enforce import (
    classify_pending,
    clear_flag,
    mark_reviewed,
    place_hold,
    reclassify_all,
    recompute,
    refresh_changed,
    release_hold,
    set_flag,
)
from retention.sweep import SweepResult, sweep, upcoming

__all__ = [
    "FACT_EVENTS",
    "SWEEP_ACTOR",
    "Applied",
    "CaseFact",
    "Decision",
    "Facts",
    "SweepResult",
    "classify",
    "classify_pending",
    "clear_flag",
    "current_policy",
    "gather_facts",
    "mark_reviewed",
    "place_hold",
    "reclassify_all",
    "recompute",
    "refresh_changed",
    "release_hold",
    "set_flag",
    "set_policy",
    "sweep",
    "upcoming",
]
