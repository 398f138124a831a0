"""Mutants of the module-level constants of the hand-written XML paths.

mutmut 3 mutates function bodies only, and the escaping and the splice keep their patterns
in module-level constants (compiled once): the characters `escape` replaces, the characters
XML cannot carry, the empty-slot, root-tag and declared-encoding patterns, the namespace
declarations the splice looks for. Each mutant below changes one of them the way a careless
edit would; the same tests as the mutmut run must fail for every one.

    .venv/bin/python scripts/mutate_constants.py

Works on a copy of the project in a temporary folder; prints one line per mutant and exits 1
if any survives.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = [
    "tests/unit/test_xmltext.py",
    "tests/unit/test_signature_splice.py",
    "tests/integration/test_document_text.py",
    "tests/integration/test_dian_document.py",
]
XMLTEXT = "adapters/dian/xmltext.py"
SIGNER = "adapters/dian/signer.py"
SPECIAL = """_SPECIAL = re.compile(r'[&<>"\\r\\n\\t]')"""
NOT_XML = (
    '_NOT_XML = re.compile("[^\\t\\n\\r\\u0020-\\ud7ff\\ue000-\\ufffd\\U00010000-\\U0010ffff]")'
)
EMPTY_SLOT = (
    'rb"<((?:[A-Za-z_][\\w.-]*:)?)ExtensionContent\\s*(?:/>|>\\s*</\\1ExtensionContent\\s*>)"'
)

# (file, text, replacement, what the mutant breaks)
MUTANTS: list[tuple[str, str, str, str]] = [
    *(
        (XMLTEXT, SPECIAL, SPECIAL.replace(char, "", 1), f"escape skips text whose only {why}")
        for char, why in [
            ("&", "special character is &"),
            ("<", "special character is <"),
            (">", "special character is >"),
            ('"', 'special character is "'),
            ("\\r", "special character is CR"),
            ("\\n", "special character is LF"),
            ("\\t", "special character is TAB"),
        ]
    ),
    (XMLTEXT, NOT_XML, NOT_XML.replace("\\u0020", "\\u0001"), "C0 controls pass"),
    (XMLTEXT, NOT_XML, NOT_XML.replace("\\ud7ff", "\\udfff"), "lone surrogates pass"),
    (XMLTEXT, NOT_XML, NOT_XML.replace("\\ufffd", "\\uffff"), "U+FFFE and U+FFFF pass"),
    (XMLTEXT, NOT_XML, NOT_XML.replace("\\t\\n\\r", "\\n\\r"), "TAB refused"),
    (SIGNER, EMPTY_SLOT, EMPTY_SLOT.replace("Content\\s*(?:/>", "Content(?:/>"), "<x />"),
    (SIGNER, EMPTY_SLOT, EMPTY_SLOT.replace(">\\s*</", "></"), "blank slot body"),
    (SIGNER, EMPTY_SLOT, EMPTY_SLOT.replace("\\1", "(?:[A-Za-z_][\\w.-]*:)?"), "a:/b: pair"),
    (SIGNER, EMPTY_SLOT, EMPTY_SLOT.replace("[\\w.-]*", "\\w*"), "prefix with . or -"),
    (SIGNER, 'rb"<[A-Za-z_][^<>]*>"', 'rb"<[A-Za-z_?][^<>]*>"', "declaration read as root"),
    (SIGNER, "encoding\\s*=\\s*", "encoding=", "encoding = 'x' not read"),
    (SIGNER, "[\\\"']([A-Za-z0-9._-]+)", '[\\"]([A-Za-z0-9._-]+)', "encoding='x' not read"),
    (SIGNER, "f'xmlns:xades=\"{XADES}\"'.encode(),", "", "only ds looked for"),
    (SIGNER, "f'xmlns:ds=\"{DS}\"'.encode(),", "", "only xades looked for"),
]


def _copy(target: Path) -> None:
    for name in ("adapters", "domain", "worker", "tests"):
        shutil.copytree(
            ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__", "mutants")
        )
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")


def main() -> int:
    env = {**os.environ, "PYTHONPATH": ""}
    survived = 0
    with tempfile.TemporaryDirectory(prefix="mutate-constants-") as folder:
        work = Path(folder)
        _copy(work)
        where = subprocess.run(
            [sys.executable, "-c", "import adapters; print(adapters.__file__)"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if not where.startswith(folder):
            print(f"the copy is not what the tests import ({where.strip()})", file=sys.stderr)
            return 2
        for number, (name, text, replacement, what) in enumerate(MUTANTS, start=1):
            path = work / name
            original = path.read_text()
            if original.count(text) != 1:
                print(f"{number:2} {name}: {text!r} not found once", file=sys.stderr)
                return 2
            path.write_text(original.replace(text, replacement))
            try:
                result = subprocess.run(
                    [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *TESTS],
                    cwd=work,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
            finally:
                path.write_text(original)
            killed = result.returncode == 1
            survived += not killed
            failing = next((ln for ln in result.stdout.splitlines() if ln.startswith("FAILED")), "")
            status = "killed  " if killed else f"SURVIVED (pytest exit {result.returncode})"
            print(f"{number:2} {status} {name}: {what}  {failing[:100]}", flush=True)
    print(f"{len(MUTANTS)} mutants, {len(MUTANTS) - survived} killed, {survived} survived")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
