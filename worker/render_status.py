"""Readable text for `status`: the order, then its audit timeline."""

from __future__ import annotations

import json

from domain.ports import OrderKey
from domain.store import AuditEntry, OrderRecord


def _short(value: object, width: int = 110) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def print_status(key: OrderKey, record: OrderRecord | None, timeline: list[AuditEntry]) -> None:
    print(f"order      {key}")
    if record is not None:
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
    print("timeline")
    for entry in timeline:
        at = entry.created_at.isoformat(timespec="seconds")
        print(f"  #{entry.id:<6} {at}  {entry.status:<11} {_short(entry.response_out or {})}")
