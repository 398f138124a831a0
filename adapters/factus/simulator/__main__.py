"""`python -m adapters.factus.simulator --port 8702 [--rate-limit 80] [--token-ttl 600] ...`"""

from __future__ import annotations

import argparse

from adapters.factus.simulator.app import FactusSimulator, SimulatorOptions, SimulatorServer


def main(argv: list[str] | None = None) -> None:
    defaults = SimulatorOptions()
    parser = argparse.ArgumentParser(description="Local Factus API v2 simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8702)
    parser.add_argument("--client-id", default=defaults.client_id)
    parser.add_argument("--client-secret", default=defaults.client_secret)
    parser.add_argument("--username", default=defaults.username)
    parser.add_argument("--password", default=defaults.password)
    parser.add_argument("--token-ttl", type=int, default=defaults.token_ttl)
    parser.add_argument("--rate-limit", type=int, default=defaults.rate_limit)
    parser.add_argument("--rate-limit-window", type=float, default=defaults.rate_limit_window)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--dian-slow", type=int, default=0)
    args = parser.parse_args(argv)
    options = SimulatorOptions(
        client_id=args.client_id,
        client_secret=args.client_secret,
        username=args.username,
        password=args.password,
        token_ttl=args.token_ttl,
        rate_limit=args.rate_limit,
        rate_limit_window=args.rate_limit_window,
        latency=args.latency,
        dian_slow=args.dian_slow,
    )
    server = SimulatorServer((args.host, args.port), FactusSimulator(options))
    print(f"Factus simulator listening on {server.base_url} (POST /_control, GET /_stats)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
