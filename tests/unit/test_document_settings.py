"""Which document an order becomes, as the settings say it, and the settings Factus refuses."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.documents import DocumentKind
from domain.order import parse_order
from tests.factories import order
from worker.bootstrap import planner
from worker.settings import DocumentSettings, RegisterSettings, Settings, WorkerSettings


def test_factus_refuses_a_pos_mode_at_start_unless_pos_tickets_may_be_invoices() -> None:
    pos = DocumentSettings(mode="pos", factus_pos_as_invoice=False)
    with pytest.raises(ValidationError, match="Factus has none"):
        Settings(gateway="factus", documents=pos)
    till = {"1": RegisterSettings(), "2": RegisterSettings(mode="payload")}
    with pytest.raises(ValidationError, match="DOCUMENTS__FACTUS_POS_AS_INVOICE"):
        Settings(
            gateway="factus",
            documents=DocumentSettings(factus_pos_as_invoice=False),
            registers=till,
        )
    allowed = Settings(gateway="factus", documents=DocumentSettings(mode="pos"))
    assert planner(allowed).plan(parse_order(order("A"))).kind is DocumentKind.INVOICE
    assert (
        planner(Settings(documents=DocumentSettings(mode="pos"))).plan(parse_order(order("B"))).kind
        is DocumentKind.POS
    )


def test_a_register_may_have_its_own_mode_and_the_default_register_must_exist() -> None:
    registers = {"1": RegisterSettings(), "bar": RegisterSettings(mode="pos")}
    chosen = planner(Settings(registers=registers))
    assert chosen.plan(parse_order(order("A"))).kind is DocumentKind.INVOICE
    at_bar = parse_order({**order("B"), "caja": "bar"})
    assert chosen.plan(at_bar) == chosen.plan(at_bar)
    assert chosen.plan(at_bar).kind is DocumentKind.POS and chosen.plan(at_bar).register == "bar"
    with pytest.raises(ValidationError, match="default_register 'x' is not one of REGISTERS"):
        Settings(default_register="x")


def test_factus_on_rabbitmq_needs_redis_for_its_shared_token_and_rate_limit() -> None:
    amqp = "amqp://guest:guest@127.0.0.1:5672//"
    with pytest.raises(ValidationError, match="REDIS_URL"):
        Settings(gateway="factus", broker_url=amqp, factus={"numbering_range_id": 8})
    ok = Settings(
        gateway="factus",
        broker_url=amqp,
        redis_url="redis://127.0.0.1:6379/0",
        factus={"numbering_range_id": 8},
    )
    assert ok.effective_redis_url == "redis://127.0.0.1:6379/0"
    assert Settings(gateway="dian", broker_url=amqp).effective_redis_url is None


def test_issuers_are_spread_over_lanes_and_the_settings_issuer_keeps_the_queue() -> None:
    settings = Settings(queue="q", worker=WorkerSettings(issuer_lanes=4))
    assert settings.queues == ["q", "q.lane1", "q.lane2", "q.lane3"]
    assert settings.queue_for(settings.issuer.nit) == "q"
    lanes = {settings.queue_for(str(800000000 + n)) for n in range(50)}
    assert lanes == {"q.lane1", "q.lane2", "q.lane3"}
    assert settings.queue_for("800197268") == settings.queue_for("800197268")
    one = Settings(queue="q", worker=WorkerSettings(issuer_lanes=1))
    assert one.queues == ["q"] and one.queue_for("800197268") == "q"
