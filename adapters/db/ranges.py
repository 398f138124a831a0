"""Numbering ranges in PostgreSQL: choosing the range that serves a till, allocating from it,
and managing ranges (add, list, retire).

A till's own active ranges serve it; a till without any uses the issuer's shared ranges
(`register` NULL). Among the ranges that serve it, numbers come from the oldest one until it
is used up or out of its validity, then from the next: an operator adds the next resolution
before the current one runs out and the switch needs no restart.

A number is allocated by bumping the range's counter in the transaction that accepts the
order: the row lock makes concurrent accepts take turns, and a rolled-back accept gives its
number back, so a range is consecutive and gap-free.

A range's technical key is stored sealed with the master key when SECRETS_KEY is set
(`sealed:` and the token, under `adapters.secretbox.range_label`), in clear text otherwise:
numbering never opens it, only the DIAN document builder does, for the CUFE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from adapters.db.models import DocumentRow, NumberingRangeRow
from adapters.secretbox import SecretBox, SecretsKeyError, range_label
from domain.documents import DocumentKind
from domain.errors import FieldError, NumberingError
from domain.issuer import NumberingRange
from domain.ports import DocumentNumber

RANGES = cast(Table, NumberingRangeRow.__table__)
DOCUMENTS = cast(Table, DocumentRow.__table__)
WARN_USED = 0.9  # warn once this share of a range is used
WARN_DAYS = 30  # warn this many days before a range expires
SEALED = "sealed:"  # how a sealed technical key starts; any other stored key is clear text


def to_range(row: Any, label: str = "") -> NumberingRange:
    """The range in a result row; `label` is the prefix its columns carry in a join."""

    def column(name: str) -> Any:
        return getattr(row, label + name)

    key = column("technical_key") or ""
    sealed = key.startswith(SEALED)
    return NumberingRange(
        resolution=column("resolution"),
        prefix=column("prefix"),
        first=int(column("first")),
        last=int(column("last")),
        valid_from=column("valid_from"),
        valid_to=column("valid_to"),
        technical_key="" if sealed else key,
        kind=DocumentKind(column("kind")),
        register=column("register"),
        width=int(column("width")),
        id=int(column("id")),
        sealed_key=key.removeprefix(SEALED) if sealed else "",
    )


def reseal_technical_keys(conn: Connection, box: SecretBox) -> int:
    """Seal every stored technical key with the first key of `box`, the clear ones too,
    inside the caller's transaction; how many."""
    rows = conn.execute(
        select(RANGES).where(RANGES.c.technical_key.is_not(None)).order_by(RANGES.c.id)
    ).all()
    for row in rows:
        numbering = to_range(row)
        label = range_label(row.issuer, numbering)
        if numbering.sealed_key:
            token = box.reseal(label, numbering.sealed_key)
        else:
            token = box.seal(label, numbering.technical_key.encode("utf-8"))
        conn.execute(
            update(RANGES).where(RANGES.c.id == row.id).values(technical_key=SEALED + token)
        )
    return len(rows)


@dataclass(frozen=True)
class RangeStatus:
    """A stored range as operators see it (never its technical key)."""

    range: NumberingRange
    issuer: str
    next_number: int
    origin: str
    retired_at: datetime | None

    @property
    def used(self) -> int:
        return self.next_number - self.range.first

    @property
    def size(self) -> int:
        return self.range.last - self.range.first + 1

    @property
    def remaining(self) -> int:
        return self.range.last - self.next_number + 1

    def warnings(self, today: date) -> list[str]:
        return range_warnings(self.range, self.next_number - 1, today)

    def as_dict(self, today: date) -> dict[str, Any]:
        r = self.range
        return {
            "id": r.id,
            "issuer": self.issuer,
            "kind": str(r.kind),
            "register": r.register,
            "prefix": r.prefix,
            "resolution": r.resolution,
            "first": r.digits(r.first),
            "last": r.digits(r.last),
            "next": r.digits(self.next_number) if self.remaining > 0 else None,
            "used": self.used,
            "remaining": self.remaining,
            "valid_from": r.valid_from.isoformat(),
            "valid_to": r.valid_to.isoformat(),
            "has_technical_key": r.has_technical_key,
            "origin": self.origin,
            "retired_at": self.retired_at.isoformat() if self.retired_at else None,
            "warnings": self.warnings(today),
        }


def range_warnings(numbering: NumberingRange, last_used: int, today: date) -> list[str]:
    """Warnings once 90 % of the range is used or it expires within 30 days."""
    warnings = []
    size = numbering.last - numbering.first + 1
    used = last_used - numbering.first + 1
    name = describe(numbering)
    if used >= WARN_USED * size:
        warnings.append(
            f"numbering range {name} is {100 * used // size} % used "
            f"({numbering.last - last_used} numbers left)"
        )
    days_left = (numbering.valid_to - today).days
    if days_left <= WARN_DAYS:
        warnings.append(
            f"numbering range {name} expires in {days_left} days ({numbering.valid_to})"
        )
    return warnings


def describe(numbering: NumberingRange) -> str:
    span = (
        f"{numbering.prefix}{numbering.digits(numbering.first)}-{numbering.digits(numbering.last)}"
    )
    return f"{span} (resolution {numbering.resolution})"


def _till(register: str) -> str:
    return f"register {register!r}"


def allocate(
    conn: Connection, issuer: str, kind: DocumentKind, register: str, today: date
) -> tuple[DocumentNumber, NumberingRange, list[str]]:
    """The next number for `register`'s `kind` documents, inside the caller's transaction.

    Raises `NumberingError` naming the till and the ranges when none can give one.
    """
    blocks, warnings, refusal = allocate_many(conn, issuer, kind, register, today, 1)
    if refusal is not None:
        raise refusal
    block = blocks[0]
    return block.numbers()[0], block.numbering, warnings


@dataclass(frozen=True)
class Block:
    """Consecutive numbers taken from one range: `first` and the `count` after it."""

    numbering: NumberingRange
    first: int
    count: int

    def numbers(self) -> list[DocumentNumber]:
        r = self.numbering
        return [
            DocumentNumber(r.prefix, n, r.width) for n in range(self.first, self.first + self.count)
        ]


def allocate_many(
    conn: Connection, issuer: str, kind: DocumentKind, register: str, today: date, count: int
) -> tuple[list[Block], list[str], NumberingError | None]:
    """`count` consecutive numbers for `register`'s `kind` documents, inside the caller's
    transaction: from the range in use, then from the next one when it runs out (each range's
    counter is bumped once, by the block it gives).

    Returns the blocks in the order they are to be used, the ranges' warnings, and, when the
    ranges could give fewer than `count`, the `NumberingError` that refuses the rest.
    """
    rows = conn.execute(
        select(RANGES)
        .where(
            RANGES.c.issuer == issuer,
            RANGES.c.kind == kind.value,
            RANGES.c.retired_at.is_(None),
            or_(RANGES.c.register == register, RANGES.c.register.is_(None)),
        )
        .order_by(RANGES.c.register.is_(None), RANGES.c.id)
    ).all()
    own = [r for r in rows if r.register is not None]
    candidates = own or rows
    blocks: list[Block] = []
    warnings: list[str] = []
    wanted = count
    for row in candidates:
        if not wanted:
            break
        numbering = to_range(row)
        if not numbering.valid_from <= today <= numbering.valid_to or row.next_number > row.last:
            continue
        taken = _take(conn, int(row.id), wanted)
        if taken is None:  # used up or retired since it was read
            continue
        first, given = taken
        blocks.append(Block(numbering, first, given))
        warnings += range_warnings(numbering, first + given - 1, today)
        wanted -= given
    refusal = (
        _no_number(kind, register, [to_range(r) for r in candidates], today) if wanted else None
    )
    return blocks, warnings, refusal


def _take(conn: Connection, range_id: int, wanted: int) -> tuple[int, int] | None:
    """Bump range `range_id`'s counter by up to `wanted`: (first number, how many), or None
    when it has none left. The whole block in one statement when it fits (the common case);
    else what remains, under the row's lock."""
    active = (RANGES.c.id == range_id) & RANGES.c.retired_at.is_(None)
    bumped = conn.execute(
        update(RANGES)
        .where(active, RANGES.c.next_number + wanted - 1 <= RANGES.c.last)
        .values(next_number=RANGES.c.next_number + wanted)
        .returning(RANGES.c.next_number)
    ).scalar()
    if bumped is not None:
        return int(bumped) - wanted, wanted
    row = conn.execute(
        select(RANGES.c.next_number, RANGES.c.last).where(active).with_for_update()
    ).first()
    if row is None or row.next_number > row.last:
        return None
    given = min(wanted, int(row.last) - int(row.next_number) + 1)
    conn.execute(
        update(RANGES)
        .where(RANGES.c.id == range_id)
        .values(next_number=RANGES.c.next_number + given)
    )
    return int(row.next_number), given


def _no_number(
    kind: DocumentKind, register: str, candidates: Sequence[NumberingRange], today: date
) -> NumberingError:
    family = "POS" if kind is DocumentKind.POS else "invoice"
    if not candidates:
        message = (
            f"{_till(register)} has no active {family} numbering range "
            f"(add one: einvoice range add --kind {kind.word} --register {register} ...)"
        )
        return NumberingError(message, FieldError("caja", "no_numbering_range", message))
    states = []
    for numbering in candidates:
        if today > numbering.valid_to:
            states.append(f"{describe(numbering)} expired on {numbering.valid_to}")
        elif today < numbering.valid_from:
            states.append(f"{describe(numbering)} is valid from {numbering.valid_from}")
        else:
            states.append(f"{describe(numbering)} is exhausted")
    expired = all(today > n.valid_to for n in candidates)
    rule = "numbering_range_expired" if expired else "numbering_range_exhausted"
    message = (
        f"{_till(register)} cannot number its {family} documents: "
        + "; ".join(states)
        + "; add the next authorized range (einvoice range add)"
    )
    return NumberingError(message, FieldError("caja", rule, message))


class SqlNumberingRanges:
    """Ranges as operators manage them, and the range the settings describe; technical keys
    are sealed with `box` (None: stored in clear text)."""

    def __init__(self, engine: Engine, box: SecretBox | None = None) -> None:
        self._engine = engine
        self._box = box

    def sync_configured(self, issuer: str, numbering: NumberingRange) -> NumberingRange:
        """Make the range the settings describe the issuer's active settings range for its kind.

        Idempotent. A range the settings no longer describe is retired (ranges added with the
        command line are left alone); a range an operator retired stays retired. Its counter
        starts after the highest number its prefix has already issued, so no number is given
        twice.
        """
        try:
            return self._sync_configured(issuer, numbering)
        except IntegrityError:
            # another process stored the same range at the same moment (two workers or intake
            # processes starting together): it exists now, so this is the update
            return self._sync_configured(issuer, numbering)

    def _sync_configured(self, issuer: str, numbering: NumberingRange) -> NumberingRange:
        kind = numbering.kind.value
        with self._engine.begin() as conn:
            same = and_(
                RANGES.c.issuer == issuer,
                RANGES.c.kind == kind,
                RANGES.c.prefix == numbering.prefix,
                RANGES.c.resolution == numbering.resolution,
                RANGES.c.first == numbering.first,
            )
            row = conn.execute(select(RANGES).where(same).with_for_update()).first()
            if row is None:
                issued = conn.execute(
                    select(func.max(DOCUMENTS.c.consecutive)).where(
                        DOCUMENTS.c.issuer == issuer,
                        DOCUMENTS.c.kind == kind,
                        DOCUMENTS.c.prefix == numbering.prefix,
                    )
                ).scalar()
                start = max(numbering.first, int(issued) + 1 if issued is not None else 0)
                conn.execute(
                    insert(RANGES).values(
                        **self._columns(issuer, numbering),
                        next_number=min(start, numbering.last + 1),
                        origin="settings",
                    )
                )
            elif row.origin == "settings":
                conn.execute(
                    update(RANGES)
                    .where(RANGES.c.id == row.id)
                    .values(
                        last=max(numbering.last, int(row.next_number) - 1),
                        valid_from=numbering.valid_from,
                        valid_to=numbering.valid_to,
                        technical_key=self._synced_key(issuer, numbering, row.technical_key),
                        width=numbering.width,
                    )
                )
            conn.execute(
                update(RANGES)
                .where(
                    RANGES.c.issuer == issuer,
                    RANGES.c.kind == kind,
                    RANGES.c.origin == "settings",
                    RANGES.c.register.is_(None),
                    RANGES.c.retired_at.is_(None),
                    ~same,
                )
                .values(retired_at=func.now())
            )
            stored = conn.execute(select(RANGES).where(same)).one()
        return to_range(stored)

    def add(self, issuer: str, numbering: NumberingRange) -> RangeStatus:
        """Store a range an operator was authorized. Raises ValueError if it exists already."""
        with self._engine.begin() as conn:
            exists = conn.execute(
                select(RANGES.c.id).where(
                    RANGES.c.issuer == issuer,
                    RANGES.c.kind == numbering.kind.value,
                    RANGES.c.prefix == numbering.prefix,
                    RANGES.c.resolution == numbering.resolution,
                    RANGES.c.first == numbering.first,
                )
            ).first()
            if exists is not None:
                raise ValueError(
                    f"range {describe(numbering)} is already stored as range {exists.id}"
                )
            row = conn.execute(
                insert(RANGES)
                .values(
                    **self._columns(issuer, numbering), next_number=numbering.first, origin="cli"
                )
                .returning(RANGES)
            ).one()
        return _status(row)

    def _key(self, issuer: str, numbering: NumberingRange) -> str | None:
        if not numbering.technical_key:
            return None
        if self._box is None:
            return numbering.technical_key
        secret = numbering.technical_key.encode("utf-8")
        return SEALED + self._box.seal(range_label(issuer, numbering), secret)

    def _synced_key(self, issuer: str, numbering: NumberingRange, stored: str | None) -> str | None:
        """The settings' key as it is to be stored: a sealed one that still holds it is kept
        (and kept by a process without SECRETS_KEY, such as an intake without it)."""
        if stored and stored.startswith(SEALED) and numbering.technical_key:
            if self._box is None:
                return stored
            try:
                held = self._box.open(range_label(issuer, numbering), stored.removeprefix(SEALED))
            except SecretsKeyError:
                held = b""
            if held == numbering.technical_key.encode("utf-8"):
                return stored
        return self._key(issuer, numbering)

    def _columns(self, issuer: str, numbering: NumberingRange) -> dict[str, Any]:
        return {
            "issuer": issuer,
            "kind": numbering.kind.value,
            "register": numbering.register,
            "prefix": numbering.prefix,
            "resolution": numbering.resolution,
            "first": numbering.first,
            "last": numbering.last,
            "width": numbering.width,
            "valid_from": numbering.valid_from,
            "valid_to": numbering.valid_to,
            "technical_key": self._key(issuer, numbering),
        }

    def list(self, issuer: str | None = None, include_retired: bool = False) -> list[RangeStatus]:
        query = select(RANGES).order_by(RANGES.c.issuer, RANGES.c.kind, RANGES.c.id)
        if issuer is not None:
            query = query.where(RANGES.c.issuer == issuer)
        if not include_retired:
            query = query.where(RANGES.c.retired_at.is_(None))
        with self._engine.connect() as conn:
            return [_status(row) for row in conn.execute(query)]

    def retire(self, range_id: int) -> RangeStatus | None:
        """Stop numbering from a range (numbers already given stay). None if unknown."""
        with self._engine.begin() as conn:
            row = conn.execute(
                update(RANGES)
                .where(RANGES.c.id == range_id)
                .values(retired_at=func.coalesce(RANGES.c.retired_at, func.now()))
                .returning(RANGES)
            ).first()
        return _status(row) if row is not None else None


def list_ranges(
    conn: Connection, issuer: str | None = None, include_retired: bool = False
) -> list[RangeStatus]:
    """Stored ranges, per issuer and kind in the order they are used."""
    query = select(RANGES).order_by(RANGES.c.issuer, RANGES.c.kind, RANGES.c.id)
    if issuer is not None:
        query = query.where(RANGES.c.issuer == issuer)
    if not include_retired:
        query = query.where(RANGES.c.retired_at.is_(None))
    return [_status(row) for row in conn.execute(query)]


def _status(row: Any) -> RangeStatus:
    retired = row.retired_at
    if retired is not None and retired.tzinfo is None:
        retired = retired.replace(tzinfo=UTC)
    return RangeStatus(to_range(row), row.issuer, int(row.next_number), row.origin, retired)
