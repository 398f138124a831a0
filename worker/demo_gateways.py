"""What the demo starts for each gateway: a local DIAN or Factus simulator speaking the real
protocol (the demo never talks to a real authority), or nothing for the simulated gateway."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

DEMO_CERT_PASSWORD = "demo-only"  # a throwaway self-signed certificate made for this run


def prepare_gateway(stack: ExitStack, gateway: str, workdir: Path) -> dict[str, str]:
    if gateway == "dian":
        return {**_dian(stack, workdir), **_mail_sink(stack, workdir)}
    if gateway == "factus":
        return _factus(stack)
    return {}


def _dian(stack: ExitStack, workdir: Path) -> dict[str, str]:
    from adapters.dian.devcert import make_test_pkcs12
    from adapters.dian.simulator import start_simulator
    from worker.settings import Settings

    settings = Settings()
    prefix = settings.numbering.prefix
    pos = settings.pos_numbering
    d = settings.dian
    server, url = start_simulator(
        technical_keys={prefix: settings.numbering.technical_key.get_secret_value()},
        software_pins={d.software_id: d.software_pin.get_secret_value()},
        pos_software_pins={d.pos_software_id: d.pos_software_pin.get_secret_value()},
        pos_ranges={
            pos.prefix: {
                "resolution": pos.resolution,
                "from": pos.first,
                "to": pos.last,
                "valid_from": pos.valid_from.isoformat(),
                "valid_to": pos.valid_to.isoformat(),
            }
        },
    )
    stack.callback(server.server_close)
    stack.callback(server.shutdown)
    workdir.mkdir(parents=True, exist_ok=True)
    cert = workdir / "demo-certificate.p12"
    cert.write_bytes(make_test_pkcs12(settings.issuer.nit, DEMO_CERT_PASSWORD))
    print(f"DIAN simulator (full checks) at {url}; demo certificate {cert}")
    return {
        "DIAN__ENDPOINT": url,
        "DIAN__CERT_PATH": str(cert),
        "DIAN__CERT_PASSWORD": DEMO_CERT_PASSWORD,
    }


def _factus(stack: ExitStack) -> dict[str, str]:
    from adapters.factus.simulator.app import SimulatorOptions, start_simulator

    options = SimulatorOptions()
    server, url = start_simulator()
    stack.callback(server.stop)
    print(f"Factus simulator at {url}")
    return {
        "FACTUS__BASE_URL": url,
        "FACTUS__CLIENT_ID": options.client_id,
        "FACTUS__CLIENT_SECRET": options.client_secret,
        "FACTUS__USERNAME": options.username,
        "FACTUS__PASSWORD": options.password,
        "FACTUS__NUMBERING_RANGE_ID": str(options.numbering_range_ids[0]),
    }


def _mail_sink(stack: ExitStack, workdir: Path) -> dict[str, str]:
    """A local SMTP server that keeps the buyers' copies (`var/demo/mail/*.eml`)."""
    from adapters.mail.sink import MailSink

    folder = workdir / "mail"
    folder.mkdir(parents=True, exist_ok=True)
    sink = MailSink(folder=folder).start()
    stack.callback(sink.stop)
    print(f"mail sink (SMTP) at {sink.host}:{sink.port}; messages kept in {folder}")
    return {
        "SMTP__HOST": sink.host,
        "SMTP__PORT": str(sink.port),
        "SMTP__SECURITY": "none",
        "SMTP__FROM": "facturacion@example.co",
    }
