"""The Celery application, configured from `Settings`.

Delivery settings follow DESIGN.md: JSON only, late acks, reject on worker lost, prefetch 1,
a visibility timeout longer than any lease, nested time limits, no result backend.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import (
    beat_init,
    celeryd_init,
    setup_logging,
    worker_process_init,
    worker_process_shutdown,
)
from kombu.entity import Exchange, Queue

from worker import bootstrap, watched_events
from worker.logs import configure_logging
from worker.publisher import TASK_DELIVER, TASK_PROCESS, TASK_RECONCILE
from worker.redis_transport import TRANSPORT as REDIS_TRANSPORT
from worker.settings import VAR_DIR, Settings

EX_CONFIG = 78  # sysexits: configuration error


def celery_config(settings: Settings) -> dict[str, Any]:
    w = settings.worker
    transport: dict[str, Any] = {}
    redis_broker = settings.broker_url.startswith(("redis://", "rediss://"))
    if redis_broker:
        transport.update(
            visibility_timeout=w.visibility_timeout,
            unacked_restore_interval=10,
            unacked_restore_throttle=1,
            max_connections=max(20, w.concurrency + 10),
            socket_keepalive=True,
            health_check_interval=30,
        )
    config: dict[str, Any] = {
        "broker_url": settings.broker_url,
        # kombu's Redis transport, with a channel that survives its connection (see the module)
        "broker_transport": REDIS_TRANSPORT if settings.broker_url.startswith("redis://") else None,
        "broker_transport_options": transport,
        "visibility_timeout": w.visibility_timeout,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "event_serializer": "json",
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": w.soft_time_limit,
        "task_time_limit": w.hard_time_limit,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_send_task_events": w.task_events,
        "task_send_sent_event": w.task_events,
        "worker_hijack_root_logger": False,
        "worker_max_tasks_per_child": 1000,
        "worker_soft_shutdown_timeout": 30.0,
        "worker_enable_soft_shutdown_on_idle": True,
        "worker_eta_task_limit": 1000,
        "task_default_queue": settings.queue,
        "task_routes": {
            TASK_PROCESS: {"queue": settings.queue},
            TASK_RECONCILE: {"queue": settings.queue},
            TASK_DELIVER: {"queue": settings.delivery_queue},
        },
        "beat_schedule": {
            "reconcile": {
                "task": TASK_RECONCILE,
                "schedule": w.reconcile_interval,
                "options": {"expires": max(5.0, w.reconcile_interval), "queue": settings.queue},
            }
        },
    }
    if is_amqp(settings.broker_url):
        config.update(amqp_config(settings))
    if redis_broker:
        config.update(
            beat_scheduler="redbeat.RedBeatScheduler",
            redbeat_redis_url=settings.effective_redis_url,
            redbeat_key_prefix=f"redbeat:{settings.queue}:",
            redbeat_lock_timeout=max(60, int(w.reconcile_interval * 4)),
            beat_max_loop_interval=min(10, int(w.reconcile_interval)),
            # `celery inspect ping -d celerybeat@HOST` answers while the scheduler ticks
            beat_enable_remote_control=True,
        )
    else:
        VAR_DIR.mkdir(exist_ok=True)
        config["beat_schedule_filename"] = str(VAR_DIR / "celerybeat-schedule")
        if settings.database_url.startswith("postgresql"):
            # one beat per deployment without Redis: a PostgreSQL advisory lock (worker.beat_lock)
            config.update(
                beat_scheduler="worker.beat_lock:AdvisoryLockScheduler",
                beat_max_loop_interval=min(10, int(w.reconcile_interval)),
                beat_enable_remote_control=True,
            )
    return config


def is_amqp(url: str) -> bool:
    return url.startswith(("amqp://", "amqps://", "pyamqp://"))


def amqp_config(settings: Settings) -> dict[str, Any]:
    """RabbitMQ: durable quorum queues (QUEUE, its issuer lanes, the delivery queue) with a
    delivery limit, publisher confirms.

    The queue's exchange is a topic exchange so that retry countdowns use Celery's native
    delayed delivery (quorum queues have no global QoS, which ETA messages held by the worker
    would need)."""
    exchange = Exchange(settings.queue, type="topic", durable=True)  # type: ignore[no-untyped-call]
    queues = tuple(
        Queue(  # type: ignore[no-untyped-call]
            name,
            exchange,
            routing_key=name,
            durable=True,
            queue_arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": settings.worker.delivery_limit,
            },
        )
        for name in (*settings.queues, settings.delivery_queue)
    )
    return {
        "task_queues": queues,  # the issuers' lanes and the delivery queue, each a quorum queue
        "task_default_exchange": settings.queue,
        "task_default_exchange_type": "topic",
        "task_default_routing_key": settings.queue,
        "task_default_queue_type": "quorum",
        "task_create_missing_queues": False,
        "broker_transport_options": {"confirm_publish": True},
        "broker_heartbeat": 30,
        "worker_detect_quorum_queues": True,
        "broker_native_delayed_delivery_queue_type": "quorum",
    }


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or Settings()
    app = Celery("einvoice", set_as_current=True)
    app.conf.update(celery_config(settings))
    app.conf.einvoice_settings = settings
    from worker.tasks import register

    register(app)
    watched_events.install(app, settings.worker.task_events)
    return app


@setup_logging.connect
def _setup_logging(**_: Any) -> None:
    configure_logging(Settings(), capture=True)


@celeryd_init.connect
def _refuse_an_implicit_gateway(conf: Any = None, **_: Any) -> None:
    settings: Settings = getattr(conf, "einvoice_settings", None) or Settings()
    problem = settings.implicit_gateway_problem()
    if problem:
        configure_logging(settings)
        logging.getLogger("worker").critical("worker not started: %s", problem)
        # Celery logs and swallows ordinary exceptions from signal receivers; SystemExit stops
        # the start before anything is consumed, whether by `einvoice worker` or `celery worker`.
        raise SystemExit(EX_CONFIG)


@beat_init.connect
def _beat_sends_no_task_events(sender: Any = None, **_: Any) -> None:
    # Beat publishes only the reconcile task, which stays out of Flower (see worker.tasks).
    if sender is not None:
        sender.app.conf.task_send_sent_event = False


@worker_process_init.connect
def _init_process(**_: Any) -> None:
    bootstrap.reset()  # drop anything inherited from the parent before this child builds its own


@worker_process_shutdown.connect
def _shutdown_process(**_: Any) -> None:
    bootstrap.reset()


app = create_app()
