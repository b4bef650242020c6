"""What the registry does with its hash chain besides extending it: verify it (VerifyChain,
`gridbus credit verify-chain`) against the last checkpoint it published or one a witness kept,
and sign a checkpoint of its head on a schedule (credit's nameko timer), published through the
outbox as `credit.chain.checkpoint` (services/credit/checkpoint.py says what is signed)."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from services.credit import checkpoint, domain, store
from services.credit.checkpoint import Checkpoint
from shared import auth
from shared.auth import Principal
from shared.config import settings
from shared.db import session_scope
from shared.outbox import record_event
from shared.timefmt import iso_utc, utcnow

log = logging.getLogger(__name__)

CHECKPOINT_EVENT = "credit.chain.checkpoint"


@dataclass(frozen=True)
class Verdict:
    checked: int                          # records whose hashes were checked
    broken: domain.ChainBreak | None      # the first thing wrong, or None: intact
    checkpoint: Checkpoint | None         # what the chain was compared with


def verify_keys() -> dict[str, bytes]:
    """Public keys by key id: GRIDBUS_CREDIT_CHECKPOINT_VERIFY_KEYS (the current key's and,
    during a rotation, the previous one's), so that a process that verifies holds no private key;
    when that is not set (development), the public half of GRIDBUS_CREDIT_CHECKPOINT_KEY."""
    s = settings()
    if s.credit_checkpoint_verify_keys:
        return dict(s.credit_checkpoint_verify_keys)
    key_id, seed = s.credit_checkpoint_key
    return {key_id: checkpoint.public_key(seed)}


def _stored(row) -> Checkpoint | None:
    if row is None:
        return None
    return Checkpoint(str(row.head_record_id) if row.head_record_id else None, row.head_hash, row.record_count,
                      iso_utc(row.at), row.key_id, row.signature)


def verify(caller: Principal, kept: Checkpoint | None = None) -> Verdict:
    """Recomputes the chain and compares it with a checkpoint: `kept` (a witness's copy), else
    the last one the registry published. A checkpoint that does not verify with a verify key,
    a chain shorter than a checkpoint, or a checkpoint's hash not at its place is tampering."""
    auth.require_role(caller, auth.ADMIN, auth.SERVICE, auth.DEPARTMENT)
    with session_scope() as session:
        against = kept or _stored(store.last_checkpoint(session))
        if against is not None:
            problem = checkpoint.signature_problem(against, verify_keys())
            if problem:
                return Verdict(0, domain.ChainBreak(0, "", problem), against)
        checked, broken = domain.verify_chain(store.chain(session), against)
        return Verdict(checked, broken, against)


def _changed_since(session, last: Checkpoint | None) -> str | None:
    """What is wrong with the chain from the last checkpoint on, or None: the checkpoint's head
    is still at its place with its hash, and every record after it links and matches."""
    prev, after_seq = domain.GENESIS, 0
    if last is not None and last.head_record_id:
        at = store.chain_position(session, uuid.UUID(last.head_record_id))
        if at is None or at.hash != last.head_hash or at.position != last.record_count:
            return (f"the chain no longer holds the checkpoint of {last.at} (record {last.head_record_id} "
                    f"as record {last.record_count})")
        prev, after_seq = at.hash, at.seq
    _, broken = domain.verify_chain(store.chain_after(session, after_seq), prev=prev)
    return None if broken is None else f"record {broken.record_id} (seq {broken.seq}): {broken.reason}"


def checkpoint_chain(now: datetime | None = None) -> Checkpoint | None:
    """Signs the chain's head and publishes it, when it moved since the last checkpoint (None
    otherwise). A chain that no longer holds the last checkpoint is never signed again: that is
    logged as an error, for VerifyChain to explain. Replicas take turns under the chain lock."""
    with session_scope() as session:
        store.lock_chain(session)
        head = store.chain_head(session)
        head_hash = head.hash or domain.GENESIS
        last = _stored(store.last_checkpoint(session))
        if last is not None and (last.record_count, last.head_hash) == (head.count, head_hash):
            return None
        problem = _changed_since(session, last)
        if problem:
            log.error("not signing a checkpoint of the credit chain: %s; see gridbus credit verify-chain", problem)
            return None
        when = now or utcnow()
        signed = checkpoint.sign(head_record_id=str(head.id) if head.id else None, head_hash=head_hash,
                                 record_count=head.count, at=iso_utc(when), key=settings().credit_checkpoint_key)
        store.insert_checkpoint(session, {**signed.payload(), "at": when})
        record_event(session, store.SCHEMA, CHECKPOINT_EVENT, "chain", signed.payload())
        return signed
