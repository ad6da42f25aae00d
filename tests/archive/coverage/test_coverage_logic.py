"""The coverage rule as a pure function: examples from the plans' vocabulary, then properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archive.coverage import logic
from archive.coverage.errors import InvalidActivity
from archive.coverage.itemlist import Mode, default_item_list, parse_item_list
from archive.coverage.logic import Status

T0 = datetime(2024, 6, 10, 10, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def span(a: float, b: float) -> logic.Span:
    return at(a), at(b)


def test_default_list_has_the_plans_activities_with_chinese_names() -> None:
    items = default_item_list()
    keys = {a.key: a for a in items.activities}
    assert (
        keys["questioning-suspect"].mode is Mode.WHOLE_PROCESS
        and keys["questioning-suspect"].zh == "询问违法嫌疑人"
    )
    assert keys["on-site-inspection"].mode is Mode.AV and keys["on-site-inspection"].text_exception
    for key in (
        "random-inspection",
        "investigation-evidence",
        "evidence-preservation",
        "hearing",
        "coercive-measures",
        "service-of-documents",
        "entering-premises",
    ):
        assert key in keys
    with pytest.raises(InvalidActivity, match="unknown activity"):
        items.get("karaoke")


def test_list_refuses_duplicates_and_misplaced_exceptions() -> None:
    base = default_item_list().to_json()
    dup = {**base, "activities": base["activities"] + base["activities"][:1]}
    with pytest.raises(InvalidActivity, match="twice"):
        parse_item_list(dup)
    bad = {**base, "activities": [{**base["activities"][0], "mode": "whole-process", "text_exception": True}]}
    with pytest.raises(InvalidActivity, match="exception"):
        parse_item_list(bad)
    with pytest.raises(InvalidActivity, match="not valid"):
        parse_item_list({**base, "activities": [{"key": "x"}]})


@pytest.mark.parametrize(
    ("spans", "mode", "reason", "status", "gaps"),
    [
        ([(0, 600)], Mode.WHOLE_PROCESS, "", Status.COVERED, []),
        ([(-100, 250), (260, 700)], Mode.WHOLE_PROCESS, "", Status.COVERED, []),  # 10 s < 30 s tolerance
        ([(0, 200), (300, 600)], Mode.WHOLE_PROCESS, "", Status.GAPS, [(200, 300)]),
        ([(60, 600)], Mode.AV, "", Status.GAPS, [(0, 60)]),  # started late
        ([(0, 500)], Mode.AV, "", Status.GAPS, [(500, 600)]),  # stopped early
        ([], Mode.AV, "", Status.MISSING, [(0, 600)]),
        ([(700, 800)], Mode.AV, "", Status.MISSING, [(0, 600)]),
        ([], Mode.AV, "the inspection record says everything", Status.MISSING_WITH_REASON, [(0, 600)]),
        ([], Mode.WHOLE_PROCESS, "no exception here", Status.MISSING, [(0, 600)]),
        ([], Mode.TEXT, "", Status.NOT_REQUIRED, [(0, 600)]),
        ([], None, "", Status.NOT_REQUIRED, [(0, 600)]),
        ([(600, 900)], Mode.AV, "", Status.MISSING, [(0, 600)]),  # touching the end is not overlap
        ([(0, 0), (10, 10)], Mode.AV, "", Status.MISSING, [(0, 600)]),  # photos record nothing
    ],
)
def test_examples(
    spans: list[tuple[float, float]],
    mode: Mode | None,
    reason: str,
    status: Status,
    gaps: list[tuple[float, float]],
) -> None:
    res = logic.measure_spans(
        span(0, 600), [span(a, b) for a, b in spans], mode, tolerance_s=30, reason=reason
    )
    assert res.status is status
    assert list(res.gaps) == [span(a, b) for a, b in gaps]


def test_point_in_time_record() -> None:
    assert logic.measure_spans(span(5, 5), [span(0, 10)], Mode.AV, tolerance_s=0).status is Status.COVERED
    assert logic.measure_spans(span(15, 15), [span(0, 10)], Mode.AV, tolerance_s=0).status is Status.MISSING


secs = st.integers(min_value=-2000, max_value=4000)
spans_st = st.lists(st.tuples(secs, secs).map(lambda t: span(min(t), max(t))), max_size=25)
tol_st = st.integers(min_value=0, max_value=300)


@settings(max_examples=300, deadline=None)
@given(spans=spans_st, a=secs, b=secs, tol=tol_st)
def test_gaps_and_covered_partition_the_window(spans: list[logic.Span], a: int, b: int, tol: int) -> None:
    start, end = at(min(a, b)), at(max(a, b))
    res = logic.measure_spans((start, end), spans, Mode.WHOLE_PROCESS, tolerance_s=tol)
    inside = logic.clip(logic.merge(spans), start, end)
    uncovered = (end - start).total_seconds() - res.covered_s
    # Every gap lies in the window, is longer than the tolerance, is uncovered, and gaps are ordered.
    for g0, g1 in res.gaps:
        assert start <= g0 < g1 <= end
        assert (g1 - g0).total_seconds() > tol
        assert all(not (x0 < g1 and x1 > g0) for x0, x1 in inside)
    assert list(res.gaps) == sorted(res.gaps)
    assert sum((g1 - g0).total_seconds() for g0, g1 in res.gaps) <= uncovered + 1e-6
    # Status follows from the gaps and the overlap.
    if start < end:
        if not inside:
            assert res.status is Status.MISSING
        else:
            assert res.status is (Status.GAPS if res.gaps else Status.COVERED)


@settings(max_examples=200, deadline=None)
@given(spans=spans_st, extra=spans_st, a=secs, b=secs, tol=tol_st)
def test_more_recordings_never_cover_less(
    spans: list[logic.Span], extra: list[logic.Span], a: int, b: int, tol: int
) -> None:
    window = (at(min(a, b)), at(max(a, b)))
    few = logic.measure_spans(window, spans, Mode.AV, tolerance_s=tol)
    more = logic.measure_spans(window, spans + extra, Mode.AV, tolerance_s=tol)
    assert more.covered_s >= few.covered_s - 1e-6
    rank = {Status.COVERED: 0, Status.GAPS: 1, Status.MISSING: 2}
    assert rank[more.status] <= rank[few.status]


@settings(max_examples=200, deadline=None)
@given(spans=spans_st, a=secs, b=secs, tol=tol_st, data=st.data())
def test_order_and_tolerance_monotonic(
    spans: list[logic.Span], a: int, b: int, tol: int, data: st.DataObject
) -> None:
    window = (at(min(a, b)), at(max(a, b)))
    shuffled = data.draw(st.permutations(spans))
    r1 = logic.measure_spans(window, spans, Mode.AV, tolerance_s=tol)
    r2 = logic.measure_spans(window, shuffled, Mode.AV, tolerance_s=tol)
    assert r1 == r2
    looser = logic.measure_spans(window, spans, Mode.AV, tolerance_s=tol + 60)
    assert len(looser.gaps) <= len(r1.gaps)


@settings(max_examples=200, deadline=None)
@given(spans=spans_st)
def test_merge_is_disjoint_sorted_union(spans: list[logic.Span]) -> None:
    m = logic.merge(spans)
    for (a0, a1), (b0, b1) in zip(m.spans, m.spans[1:], strict=False):
        assert a0 < a1 < b0 < b1
    total = sum((b - a).total_seconds() for a, b in m.spans)
    # Each original non-empty span lies inside one merged span.
    for s0, s1 in spans:
        if s1 > s0:
            assert any(a <= s0 and s1 <= b for a, b in m.spans)
    assert total <= sum(max((b - a).total_seconds(), 0) for a, b in spans) + 1e-6
