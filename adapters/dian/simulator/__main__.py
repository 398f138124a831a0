"""The DIAN simulator as a process:

python -m adapters.dian.simulator --port 8701 [--no-checks] [--technical-key P=KEY ...]
    [--software-pin SOFTWARE_ID=PIN ...] [--pos-software-pin SOFTWARE_ID=PIN ...]
    [--pos-range PREFIX=RESOLUTION:FROM:TO:VALID_FROM:VALID_TO ...]
"""

from __future__ import annotations

import argparse
import logging

from adapters.dian.simulator.app import SimulatorServer
from adapters.dian.simulator.state import Options, State


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m adapters.dian.simulator", description="Local DIAN SOAP service simulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8701)
    parser.add_argument(
        "--no-checks",
        action="store_true",
        help="skip WS-Security, schema, signature and CUFE checks (load tests)",
    )
    parser.add_argument(
        "--technical-key",
        action="append",
        default=[],
        metavar="PREFIX=KEY",
        help="technical key of a numbering prefix (repeatable)",
    )
    parser.add_argument(
        "--software-pin",
        action="append",
        default=[],
        metavar="SOFTWARE_ID=PIN",
        help="PIN of a software registered for invoices (CUDE of notes 91/92; repeatable)",
    )
    parser.add_argument(
        "--pos-software-pin",
        action="append",
        default=[],
        metavar="SOFTWARE_ID=PIN",
        help="PIN of a software registered for equivalent documents (CUDE of POS documents "
        "and their notes 94/93; repeatable)",
    )
    parser.add_argument(
        "--pos-range",
        action="append",
        default=[],
        metavar="PREFIX=RESOLUTION:FROM:TO:VALID_FROM:VALID_TO",
        help="an authorized POS numbering range (repeatable; default: EPOS habilitación)",
    )
    parser.add_argument(
        "--ubl-xsd", help="directory holding maindoc/UBL-{Invoice,CreditNote,DebitNote}-2.1.xsd"
    )
    parser.add_argument("--batch-polls", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    options = Options(checks=not args.no_checks, batch_polls=args.batch_polls, latency=args.latency)
    if args.technical_key:
        options.technical_keys = dict(item.split("=", 1) for item in args.technical_key)
    if args.software_pin:
        options.software_pins = dict(item.split("=", 1) for item in args.software_pin)
    if args.pos_software_pin:
        options.pos_software_pins = dict(item.split("=", 1) for item in args.pos_software_pin)
    if args.pos_range:
        options.update({"pos_ranges": dict(_pos_range(item) for item in args.pos_range)})
    if args.ubl_xsd:
        options.ubl_xsd_dir = args.ubl_xsd
    server = SimulatorServer((args.host, args.port), State(options=options))
    logging.info(
        "DIAN simulator on %s (checks %s)", server.base_url, "on" if options.checks else "off"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _pos_range(text: str) -> tuple[str, dict[str, str]]:
    prefix, _, rest = text.partition("=")
    resolution, first, last, valid_from, valid_to = rest.split(":")
    return prefix, {
        "resolution": resolution,
        "from": first,
        "to": last,
        "valid_from": valid_from,
        "valid_to": valid_to,
    }


if __name__ == "__main__":
    main()
