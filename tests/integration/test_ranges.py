"""Numbering ranges per till and kind, stored in PostgreSQL: which range serves an order,
gap-free under concurrency, and the range the settings describe."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from sqlalchemy import Engine, text

from adapters.db.ranges import SqlNumberingRanges
from adapters.db.store import SqlDocumentStore
from domain.documents import DocumentKind, DocumentPlan
from domain.issuer import NumberingRange
from domain.order import parse_order
from domain.ports import OrderKey
from tests.factories import order

ISSUER = "900123456"
VALID = (date(2019, 1, 1), date(2030, 12, 31))


def pos_range(prefix: str, first: int, last: int, register: str | None, width: int = 0):  # type: ignore[no-untyped-def]
    return NumberingRange(
        "18760000001",
        prefix,
        first,
        last,
        *VALID,
        kind=DocumentKind.POS,
        register=register,
        width=width,
    )


def sell(
    store: SqlDocumentStore, order_id: str, register: str, kind: DocumentKind = DocumentKind.POS
):  # type: ignore[no-untyped-def]
    plan = DocumentPlan(kind, register, numbered=True)
    return store.accept(OrderKey(ISSUER, order_id), parse_order(order(order_id)), "dian", plan)


@pytest.fixture
def ranges(clean_db: Engine) -> SqlNumberingRanges:
    return SqlNumberingRanges(clean_db)


def test_a_till_numbers_from_its_own_range_and_others_share_the_issuers(
    clean_db: Engine, ranges: SqlNumberingRanges
) -> None:
    ranges.add(ISSUER, pos_range("PS", 1, 100, None))
    ranges.add(ISSUER, pos_range("C2", 1, 9999, "2", width=4))
    store = SqlDocumentStore(clean_db)
    shared = sell(store, "A", "1").record
    own = sell(store, "B", "2").record
    assert str(shared.number) == "PS1" and shared.numbering and shared.numbering.register is None
    assert str(own.number) == "C20001", "leading zeros of the range are kept"
    assert own.register == "2" and own.numbering and own.numbering.prefix == "C2"
    again = store.get(OrderKey(ISSUER, "B"))
    assert again is not None and str(again.number) == "C20001"
    assert again.numbering == own.numbering


def test_numbers_are_consecutive_per_range_under_concurrency(
    clean_db: Engine, ranges: SqlNumberingRanges
) -> None:
    for till in ("1", "2", "3"):
        ranges.add(ISSUER, pos_range(f"R{till}", 1, 1000, till))
    store = SqlDocumentStore(clean_db)
    jobs = [(f"O-{n}", str(1 + n % 3)) for n in range(150)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        records = list(pool.map(lambda job: sell(store, *job).record, jobs))
    for till in ("1", "2", "3"):
        numbers = sorted(r.number.number for r in records if r.register == till and r.number)
        assert numbers == list(range(1, 51)), f"till {till} has gaps or duplicates"


def test_the_next_range_takes_over_when_one_is_used_up_and_a_retired_one_is_skipped(
    clean_db: Engine, ranges: SqlNumberingRanges
) -> None:
    first = ranges.add(ISSUER, pos_range("A", 1, 2, "1"))
    ranges.add(ISSUER, pos_range("B", 1, 5, "1"))
    store = SqlDocumentStore(clean_db)
    numbers = [str(sell(store, f"X{n}", "1").record.number) for n in range(4)]
    assert numbers == ["A1", "A2", "B1", "B2"]
    ranges.retire(first.range.id or 0)
    later = ranges.add(ISSUER, pos_range("C", 1, 5, "1"))
    assert ranges.retire(later.range.id or 0) is not None
    assert str(sell(store, "X9", "1").record.number) == "B3"
    listed = {s.range.prefix: s for s in ranges.list(ISSUER, include_retired=True)}
    assert listed["A"].retired_at is not None and listed["B"].next_number == 4
    assert [s.range.prefix for s in ranges.list(ISSUER)] == ["B"]


def test_the_same_authorized_range_cannot_be_added_twice(ranges: SqlNumberingRanges) -> None:
    ranges.add(ISSUER, pos_range("PS", 1, 100, None))
    with pytest.raises(ValueError, match="already stored"):
        ranges.add(ISSUER, pos_range("PS", 1, 100, "7"))


def test_the_settings_range_follows_the_settings_and_never_reuses_a_number(
    clean_db: Engine, ranges: SqlNumberingRanges
) -> None:
    test_range = NumberingRange("18760000001", "SETP", 990000000, 995000000, *VALID, "key")
    ranges.sync_configured(ISSUER, test_range)
    store = SqlDocumentStore(clean_db)
    sell(store, "S1", "1", DocumentKind.INVOICE)
    # the same range again (every process start): same counter
    ranges.sync_configured(ISSUER, test_range)
    assert str(sell(store, "S2", "1", DocumentKind.INVOICE).record.number) == "SETP990000001"
    production = NumberingRange("18764000000123", "FE", 1, 5000, *VALID, "other")
    ranges.sync_configured(ISSUER, production)
    active = ranges.list(ISSUER)
    assert [s.range.prefix for s in active] == ["FE"], "the old settings range is retired"
    assert str(sell(store, "S3", "1", DocumentKind.INVOICE).record.number) == "FE1"
    # an operator retiring the settings range keeps it retired across restarts
    ranges.retire(active[0].range.id or 0)
    ranges.sync_configured(ISSUER, production)
    assert ranges.list(ISSUER) == []


def test_a_settings_range_starts_after_the_numbers_its_prefix_already_issued(
    clean_db: Engine, ranges: SqlNumberingRanges
) -> None:
    small = NumberingRange("1", "SETP", 1, 100, *VALID, "key")
    ranges.sync_configured(ISSUER, small)
    store = SqlDocumentStore(clean_db)
    for n in range(3):
        sell(store, f"P{n}", "1", DocumentKind.INVOICE)
    wider = NumberingRange("2", "SETP", 1, 500, *VALID, "key")
    stored = ranges.sync_configured(ISSUER, wider)
    assert stored.resolution == "2"
    assert str(sell(store, "P9", "1", DocumentKind.INVOICE).record.number) == "SETP4"


def test_two_processes_storing_the_settings_range_at_once_both_start(
    clean_db: Engine, ranges: SqlNumberingRanges
) -> None:
    settings_range = NumberingRange("18760000001", "SETP", 990000000, 995000000, *VALID, "key")
    first = clean_db.connect()  # the other process: its row inserted, not yet committed
    first.execute(
        text(
            "INSERT INTO numbering_ranges (issuer, kind, prefix, resolution, first, last, width,"
            " valid_from, valid_to, technical_key, next_number, origin) VALUES (:i, '01', 'SETP',"
            " '18760000001', 990000000, 995000000, 0, :f, :t, 'key', 990000000, 'settings')"
        ),
        {"i": ISSUER, "f": VALID[0], "t": VALID[1]},
    )
    with ThreadPoolExecutor(1) as pool:
        second = pool.submit(ranges.sync_configured, ISSUER, settings_range)
        waiting = text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        deadline = time.monotonic() + 30
        with clean_db.connect() as probe:
            while not probe.execute(waiting).scalar() and time.monotonic() < deadline:
                time.sleep(0.02)  # until this process waits on the other's row
        first.commit()
        first.close()
        stored = second.result(timeout=30)
    assert stored.prefix == "SETP" and [s.range.prefix for s in ranges.list(ISSUER)] == ["SETP"]
