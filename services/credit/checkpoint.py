"""Signed checkpoints of the credit chain. Plain Python and Ed25519 (the `cryptography` package),
no I/O.

A checkpoint says: at `at`, the chain held `record_count` records and the last of them was
`head_record_id` with hash `head_hash`. Credit signs it with GRIDBUS_CREDIT_CHECKPOINT_KEY and
publishes it as `credit.chain.checkpoint`, so the subscribers who keep it witness the chain
outside the database: a chain later found shorter than a checkpoint, or without the
checkpoint's hash at the checkpoint's position, was changed behind the registry's back (by
someone able to disable its triggers), even if every record's hash was recomputed.

What is signed (Ed25519, the signature in base64) is the UTF-8 of

    gridbus.credit.chain.checkpoint.v1\n{"at":...,"head_hash":...,"head_record_id":...,"key_id":...,"record_count":...}

the JSON with its keys sorted and no spaces (`head_record_id` null for an empty chain), so
anyone can verify a checkpoint with the public key alone."""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import asdict, dataclass
from typing import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.errors import InvalidArgument

PREFIX = b"gridbus.credit.chain.checkpoint.v1\n"
SIGNED_FIELDS = ("at", "head_hash", "head_record_id", "key_id", "record_count")


@dataclass(frozen=True)
class Checkpoint:
    head_record_id: str | None   # None: the chain was empty
    head_hash: str
    record_count: int
    at: str                      # RFC 3339, UTC
    key_id: str
    signature: str = ""          # base64

    def payload(self) -> dict:
        """The credit.chain.checkpoint event's data."""
        return asdict(self)


def canonical(cp: Checkpoint) -> bytes:
    signed = {name: getattr(cp, name) for name in SIGNED_FIELDS}
    return PREFIX + json.dumps(signed, sort_keys=True, separators=(",", ":")).encode()


def public_key(seed: bytes) -> bytes:
    """The 32-byte public half of an Ed25519 private seed."""
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign(*, head_record_id: str | None, head_hash: str, record_count: int, at: str,
         key: tuple[str, bytes]) -> Checkpoint:
    key_id, seed = key
    unsigned = Checkpoint(head_record_id, head_hash, record_count, at, key_id)
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(canonical(unsigned))
    return Checkpoint(head_record_id, head_hash, record_count, at, key_id, base64.b64encode(signature).decode())


def signature_problem(cp: Checkpoint, public_keys: Mapping[str, bytes]) -> str | None:
    """None when the signature verifies with the public key of its key id; else what is wrong."""
    key = public_keys.get(cp.key_id)
    if key is None:
        return f"the checkpoint of {cp.at} is signed with key {cp.key_id!r}, which is not a verify key"
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(base64.b64decode(cp.signature, validate=True), canonical(cp))
    except (InvalidSignature, binascii.Error, ValueError):
        return f"the checkpoint of {cp.at} does not verify with key {cp.key_id!r}: it was not signed by the registry"
    return None


def from_payload(data: Mapping) -> Checkpoint:
    """A checkpoint as a subscriber kept it (the event's data), checked for shape only."""
    try:
        count = data["record_count"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidArgument("a checkpoint's record_count is a whole number, 0 or more")
        values = {name: data[name] for name in ("head_hash", "at", "key_id", "signature")}
    except KeyError as missing:
        raise InvalidArgument(f"a checkpoint needs {missing.args[0]}")
    if not all(isinstance(v, str) and v for v in values.values()):
        raise InvalidArgument("a checkpoint's head_hash, at, key_id and signature are non-empty strings")
    head = data.get("head_record_id")
    if head is not None and not isinstance(head, str):
        raise InvalidArgument("a checkpoint's head_record_id is a string, or null for an empty chain")
    return Checkpoint(head or None, values["head_hash"], count, values["at"], values["key_id"], values["signature"])
