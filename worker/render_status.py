"""Readable text for `status`: the order, then its audit timeline."""

from __future__ import annotations

import json

from domain.notes import Remaining
from domain.ports import OrderKey
from domain.store import AuditEntry, DocumentRecord, Refused


def _short(value: object, width: int = 110) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def print_status(
    key: OrderKey,
    record: DocumentRecord | None,
    timeline: list[AuditEntry],
    refused: Refused,
    hidden: int = 0,
    notes: list[DocumentRecord] | None = None,
    creditable: Remaining | None = None,
) -> None:
    """`hidden`: how many earlier timeline rows are not shown; `notes`: the order's notes and
    `creditable` what remains of its document after them."""
    print(f"{'note' if key.note else 'order':<10} {key}")
    if record is not None:
        print(f"document   {record.kind.value} {record.kind.label}")
        if record.corrects is not None:
            print(f"corrects   {record.corrects.number} ({record.corrects.key[:16]}…)")
        if record.note is not None:
            figures = record.note["figures"]
            print(f"carries    {figures['tipo']}: {figures['total']} ({figures['motivo']})")
        if record.register:
            print(f"register   {record.register}")
        print(f"state      {record.state}")
        print(f"gateway    {record.gateway}")
        if record.number:
            print(f"number     {record.number}")
        for name in ("cufe", "number", "qr", "zip_key", "track_id", "public_url"):
            if name in record.references and not (name == "number" and record.number):
                print(f"{name:<10} {record.references[name]}")
        print(f"attempts   {record.attempts}")
        print(f"accepted   {record.created_at.isoformat(timespec='seconds')}")
        if record.reason:
            rules = record.reason.get("rules") or record.reason.get("errors")
            if rules:
                print("reason")
                for item in rules:
                    code = item.get("code") or item.get("field")
                    text = item.get("text") or item.get("message")
                    kind = item.get("kind") or item.get("rule")
                    print(f"  - {code} [{kind}] {text}")
            else:
                print(f"reason     {_short(record.reason)}")
    else:
        print("state      not accepted (no document)")
    if record is not None:
        print("timeline")
        if hidden:
            print(f"  ... {hidden} earlier rows (--limit 0 shows them all)")
        _entries(timeline)
    if notes:
        print("notes")
        for note in notes:
            number = str(note.number) if note.number else "-"
            total = note.note["figures"]["total"] if note.note else ""
            cude = note.references.get("cufe", "")
            state = str(note.state)
            print(f"  {note.key.note:<20} {note.kind.value} {number:<12} {state:<10} {total:>12}")
            if cude:
                print(f"  {'':<20} CUDE {cude}")
    if creditable is not None:
        left = creditable.as_dict()
        print(f"creditable {left['total']} left of the document")
        for line in left["lines"]:
            print(
                f"  line {line['linea']:<4} {line['cantidad']:>8} left   base {line['base']:>12}"
                f"   taxes {line['impuestos']:>10}"
            )
        if creditable.tip:
            print(f"  tip {left['tip']:>31}")
    if refused.count:
        print(f"refused at intake under this id: {refused.count}")
        _entries(refused.latest)


def _entries(entries: list[AuditEntry]) -> None:
    for entry in entries:
        at = entry.created_at.isoformat(timespec="seconds")
        print(f"  #{entry.id:<6} {at}  {entry.status:<17} {_short(entry.response_out or {})}")
