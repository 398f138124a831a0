"""The simulator's memory and knobs: stored documents, batches, counters, injected faults."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from adapters.dian.simulator.equivalent import AuthorizedRange
from adapters.dian.simulator.notes import Figures
from adapters.dian.simulator.responses import DianAnswer

HABILITACION_TECHNICAL_KEY = "fc8eac422eba16e22ffd8c6f94b3f40a6e38162c"
# The POS range two independent clients use in habilitación (dian-next-facts §1.6).
HABILITACION_POS_RANGE = {
    "resolution": "18760000001",
    "from": 1,
    "to": 1000000,
    "valid_from": "2019-01-19",
    "valid_to": "2030-01-19",
}
# OASIS UBL 2.1 + DIAN structures schemas, shipped with the package (see SOURCES.md there).
DEFAULT_UBL_XSD = Path(__file__).resolve().parents[1] / "schemas" / "ubl-xsd"


@dataclass
class Options:
    """How the simulated DIAN behaves. Every field can be changed at run time (POST /_control).

    Fault counters: 0 = off, N = the next N requests, -1 = every request.
    """

    checks: bool = True
    technical_keys: dict[str, str] = field(
        default_factory=lambda: {"SETP": HABILITACION_TECHNICAL_KEY}
    )
    # The software registered for equivalent documents: its PIN (CUDE) by software id.
    pos_software_pins: dict[str, str] = field(default_factory=dict)
    # The software registered for invoices: its PIN (the CUDE of notes 91/92) by software id.
    software_pins: dict[str, str] = field(default_factory=dict)
    # POS numbering authorizations by prefix: resolution, from, to, valid_from, valid_to.
    pos_ranges: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"EPOS": dict(HABILITACION_POS_RANGE)}
    )
    ubl_xsd_dir: str | None = str(DEFAULT_UBL_XSD)
    clock_skew_seconds: float = 300.0
    batch_polls: int = 1  # GetStatusZip answers "Batch en proceso" this many times first
    processing_polls: int = 1  # GetStatus answers 98 this many times after a 98/"" answer
    sync_answer: str | None = None  # force SendBillSync's StatusCode: "98", "66" or ""
    notifications: list[str] = field(default_factory=list)
    extra_rejections: list[str] = field(default_factory=list)
    latency: float = 0.0
    http_error_rate: float = 0.0
    http_errors: int = 0
    http_error_status: int = 503
    timeouts: int = 0
    timeout_seconds: float = 5.0
    drops: int = 0  # process (store, accept), then close the socket without answering
    invalid_security: int = 0
    server_faults: int = 0  # SOAP fault s:Receiver (an internal error), HTTP 500
    malformed: int = 0
    xxe: int = 0
    billion_laughs: int = 0

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown options: {sorted(unknown)}")
        for prefix, data in dict(changes.get("pos_ranges") or {}).items():
            try:
                AuthorizedRange.parse(prefix, data)
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"pos_ranges[{prefix!r}] is not a range: {exc}") from exc
        for name, value in changes.items():
            setattr(self, name, value)

    def authorized_pos_ranges(self) -> dict[str, AuthorizedRange]:
        return {p: AuthorizedRange.parse(p, data) for p, data in self.pos_ranges.items()}

    def take(self, name: str) -> bool:
        """Consume one unit of a fault counter; True if the fault applies now."""
        remaining = int(getattr(self, name))
        if remaining == 0:
            return False
        if remaining > 0:
            setattr(self, name, remaining - 1)
        return True

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["technical_keys"] = sorted(self.technical_keys)  # keys are secret
        data["pos_software_pins"] = sorted(self.pos_software_pins)  # PINs too
        data["software_pins"] = sorted(self.software_pins)
        return data


@dataclass
class Stored:
    """A document DIAN has: its final answer, and polls left before it is revealed."""

    number: str
    supplier_nit: str
    xml: bytes
    answer: DianAnswer
    processing_polls: int = 0


@dataclass
class Batch:
    polls_left: int
    answers: list[DianAnswer]


@dataclass
class State:
    options: Options = field(default_factory=Options)
    documents: dict[str, Stored] = field(default_factory=dict)  # by CUFE
    # (issuer NIT, document type, number) -> CUFE/CUDE of the accepted document
    accepted_numbers: dict[tuple[str, str, str], str] = field(default_factory=dict)
    # CUFE/CUDE of a document -> (kind, figures) of each note accepted against it
    accepted_notes: dict[str, list[tuple[str, Figures]]] = field(default_factory=dict)
    batches: dict[str, Batch] = field(default_factory=dict)
    submissions: Counter[str] = field(default_factory=Counter)
    counters: Counter[str] = field(default_factory=Counter)
    last_envelope: bytes = b""
    lock: threading.RLock = field(default_factory=threading.RLock)

    def reset(self) -> None:
        with self.lock:
            self.documents.clear()
            self.accepted_numbers.clear()
            self.accepted_notes.clear()
            self.batches.clear()
            self.submissions.clear()
            self.counters.clear()
            self.last_envelope = b""

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "submissions": dict(self.submissions),
                "accepted": self.counters["accepted"],
                "rejected": self.counters["rejected"],
                "duplicates": self.counters["duplicates"],
                "refused": self.counters["refused"],
                "security_faults": self.counters["security_faults"],
                "http_errors": self.counters["http_errors"],
                "requests": {
                    k.removeprefix("op:"): v
                    for k, v in self.counters.items()
                    if k.startswith("op:")
                },
            }
