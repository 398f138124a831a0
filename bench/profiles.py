"""Reading py-spy samples: where the CPU of a worker went, by layer and by function.

py-spy `record -f raw` writes collapsed stacks (`frame;frame;... count`), root first, each
frame `function (file:line)`. Idle threads (blocked in a syscall) are not sampled, so the
shares below are shares of CPU time, not of wall time.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

# First match from the leaf upwards names the layer a sample is charged to.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("simulated gateway books (sqlite3)", ("sqlite3", "adapters/gateways/simulated")),
    ("database client (sqlalchemy, psycopg2)", ("sqlalchemy", "psycopg2")),
    (
        "signing and XML (lxml, cryptography, signer)",
        (
            "adapters/dian/signer",
            "adapters/dian/wssecurity",
            "cryptography",
            "lxml",
            "adapters/dian/ubl",
            "adapters/dian/document",
            "zipfile",
            "zlib",
        ),
    ),
    ("SOAP and HTTP (zeep, httpx)", ("zeep", "httpx", "httpcore", "adapters/dian/client")),
    ("broker client (kombu, redis)", ("kombu", "redis/", "redis\\")),
    ("validation (pydantic, domain)", ("pydantic", "/domain/")),
    ("logging", ("logging/", "worker/logs")),
    ("celery machinery", ("celery/", "billiard", "vine")),
)
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def _layer(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, needles in LAYERS:
            if any(n in frame for n in needles):
                return name
    return "other (interpreter, stdlib)"


def fold_raw(paths: list[Path], top: int = 15) -> dict[str, Any]:
    """Layers and functions by own CPU samples over every file in `paths`."""
    layers: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = stack.split(";")
            total += count
            layers[_layer(frames)] += count
            match = _FRAME.match(frames[-1].strip())
            leaf = frames[-1].strip()
            if match:
                file = match["file"].split("site-packages/")[-1].replace(str(Path.cwd()), "")
                leaf = f"{match['func']} ({file.lstrip('/')})"
            functions[leaf] += count
    if not total:
        return {}
    return {
        "samples": total,
        "layers_pct": {k: round(v * 100 / total, 1) for k, v in layers.most_common()},
        "top_functions_pct": {k: round(v * 100 / total, 1) for k, v in functions.most_common(top)},
    }
