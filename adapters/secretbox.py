"""Secrets at rest: what an issuer keeps secret is stored encrypted with the deployment's
master key (`SECRETS_KEY`), never in clear text in the database.

`SECRETS_KEY` holds one or more Fernet keys separated by commas. The first one encrypts; every
one of them decrypts, so a key is rotated by putting the new key first, running
`einvoice issuer rotate-secrets` (which re-encrypts every stored secret with it) and then
dropping the old key.

Each sealed value carries the name it was sealed under (`issuer NIT/secret name`), checked
when it is opened: a database writer who copies one issuer's sealed certificate into another
issuer's row gets a refusal, not a signature under the wrong name.

A numbering range's technical key (the secret of its invoices' CUFE) is sealed too, in its
range's row, under `range_label`: issuer, kind, prefix, resolution and first number.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from domain.issuer import NumberingRange


class SecretsKeyError(ValueError):
    """The master key is missing or malformed, or cannot open a stored secret."""


class SecretBox:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise SecretsKeyError(
                "SECRETS_KEY is not set: issuers' secrets are stored encrypted with it "
                "(make one with `einvoice issuer new-secrets-key`)"
            )
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                raise SecretsKeyError(
                    f"SECRETS_KEY: key {position} is not a Fernet key (32 url-safe base64 "
                    "bytes; make one with `einvoice issuer new-secrets-key`)"
                ) from None
        self._keys = MultiFernet(fernets)

    @classmethod
    def from_setting(cls, value: str) -> SecretBox:
        return cls([k for k in value.split(",") if k.strip()])

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode("ascii")

    def seal(self, label: str, secret: bytes) -> str:
        return self._keys.encrypt(_framed(label, secret)).decode("ascii")

    def open(self, label: str, token: str) -> bytes:
        try:
            framed = self._keys.decrypt(token.encode("ascii"))
        except InvalidToken:
            raise SecretsKeyError(
                f"SECRETS_KEY cannot open the stored secret {label}: it was sealed with a key "
                "that is not in SECRETS_KEY (keep the old key after the new one until "
                "`einvoice issuer rotate-secrets` has run), or the stored value was altered"
            ) from None
        head, _, secret = framed.partition(b"\n")
        if head != label.encode("utf-8"):
            raise SecretsKeyError(
                f"the stored secret {label} was sealed for another issuer or secret: refused"
            )
        return secret

    def reseal(self, label: str, token: str) -> str:
        """The same secret sealed with the first key (for rotation)."""
        return self.seal(label, self.open(label, token))


def range_label(issuer: str, numbering: NumberingRange) -> str:
    """The name a range's technical key is sealed under: what identifies the range."""
    n = numbering
    return f"{issuer}/range/{n.kind.value}/{n.prefix}/{n.resolution}/{n.first}"


def _framed(label: str, secret: bytes) -> bytes:
    if "\n" in label:
        raise ValueError("a secret's label is one line")
    return label.encode("utf-8") + b"\n" + secret
