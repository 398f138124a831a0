"""The parts every read-back shares: rule codes, field errors, the audit timeline and its
pages, and input refused under an id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class Rule(BaseModel):
    code: str
    kind: str
    text: str


class FieldErrorBody(BaseModel):
    field: str = Field(description="Path of the broken field, e.g. `items[0].cantidad`.")
    rule: str = Field(description="Which rule it breaks, e.g. `missing`, `total_factura`.")
    message: str


class TimelineEntry(BaseModel):
    id: int
    status: str
    at: datetime
    response: dict[str, Any] | None


class TimelinePage(BaseModel):
    next: str | None = Field(description="Where the next page of the timeline is; null at its end.")
    limit: int


class Refusals(BaseModel):
    count: int = Field(description="Submissions under this id the intake refused.")
    latest: list[TimelineEntry] = Field(description="The latest refusals, oldest first.")
