"""Signed checkpoints of the credit chain on the real servers: the nameko timer publishes
credit.chain.checkpoint, which verifies with the public key alone (the documented form, built
here independently); VerifyChain and the CLI compare the chain with the last checkpoint or a
witness's copy; the owner role, which can go around the append-only trigger, rewrites or cuts
the chain's tail, rehashing it so that it is consistent in itself, and the checkpoint catches it."""
from __future__ import annotations

import base64
import json

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import text

from gridbus.credit.v1 import credit_pb2 as pb
from services.credit import chain, domain, store
from shared.config import settings
from shared.db import engine, session_scope
from tests.credit.test_credit import ADMIN, _fresh_uscc, enterprise, wait_for
from tests.event_contract import assert_payloads_match_protos
from tests.support import EventTap

# The public half of the development key (shared/config.py INSECURE_DEV_CHECKPOINT_KEY).
DEV_PUBLIC_KEY = base64.b64decode("Zmel1HvmYTCfMxnvTUgijrIWyFWlAEsgb0n9tY7Rgq4=")


def signed_bytes(data: dict) -> bytes:
    """What the registry signs, as events.proto documents it."""
    fields = {k: data[k] for k in ("at", "head_hash", "head_record_id", "key_id", "record_count")}
    return b"gridbus.credit.chain.checkpoint.v1\n" + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def add_record(credit, subject) -> pb.Record:
    return credit.AddRecord(pb.AddRecordRequest(subject_id=subject.id, kind="commendation", category="0102",
                                                severity=3), metadata=ADMIN)


def verify(credit, kept: dict | None = None) -> pb.VerifyChainResponse:
    request = pb.VerifyChainRequest(checkpoint=pb.ChainCheckpoint(**kept)) if kept else pb.VerifyChainRequest()
    return credit.VerifyChain(request, metadata=ADMIN)


def test_the_timer_publishes_a_checkpoint_that_verifies_with_the_public_key(environment, credit, credit_nameko):
    subject = enterprise(credit, _fresh_uscc(), "Checkpoint Co.")
    tap = EventTap(environment["GRIDBUS_AMQP_URI"], "credit.chain.checkpoint")
    try:
        record = add_record(credit, subject)
        events = tap.drain(lambda got: any(e["data"]["head_record_id"] == record.id for e in got), timeout=30)
    finally:
        tap.close()
    (event,) = [e for e in events if e["data"]["head_record_id"] == record.id]
    assert_payloads_match_protos([event])
    data = event["data"]
    assert (event["subject"], data["head_hash"], data["key_id"]) == ("chain", record.hash, "dev-checkpoint")
    Ed25519PublicKey.from_public_bytes(DEV_PUBLIC_KEY).verify(base64.b64decode(data["signature"]), signed_bytes(data))
    with pytest.raises(InvalidSignature):  # and it says what it says: another count does not verify
        Ed25519PublicKey.from_public_bytes(DEV_PUBLIC_KEY).verify(
            base64.b64decode(data["signature"]), signed_bytes({**data, "record_count": data["record_count"] + 1}))
    result = verify(credit, data)  # a witness's copy
    assert result.intact and result.checkpoint.head_record_id == record.id
    assert result.records_checked >= data["record_count"]


def test_a_forged_or_unknown_checkpoint_is_reported(credit, credit_nameko):
    last = wait_for(lambda: verify(credit).checkpoint.signature and verify(credit).checkpoint)
    kept = {f: getattr(last, f) for f in ("head_record_id", "head_hash", "record_count", "at", "key_id", "signature")}
    forged = verify(credit, {**kept, "record_count": last.record_count + 5})
    assert not forged.intact and "does not verify" in forged.reason
    unknown = verify(credit, {**kept, "key_id": "someone-else"})
    assert not unknown.intact and "not a verify key" in unknown.reason


def _owner():
    return engine(settings().owner_database_url)


def _head_checkpointed(credit, record_id: str):
    return wait_for(lambda: verify(credit).checkpoint.head_record_id == record_id, timeout=30)


def test_a_tail_rewritten_and_rehashed_by_the_owner_is_caught_by_the_checkpoint(credit, credit_nameko):
    subject = enterprise(credit, _fresh_uscc(), "Rewrite Co.")
    add_record(credit, subject)
    head = add_record(credit, subject)
    assert _head_checkpointed(credit, head.id)

    def rewrite(severity: int) -> None:
        """The owner, around the trigger, changes the head record and recomputes its hash: the
        chain is consistent in itself."""
        with session_scope(_owner()) as s:
            row = store.record(s, head.id)
            prev = s.execute(text("SELECT prev_hash FROM credit.records WHERE id = :i"), {"i": head.id}).scalar_one()
            rehashed = domain.record_hash(prev, domain.content_of({**row._asdict(), "severity": severity}))
            s.execute(text("ALTER TABLE credit.records DISABLE TRIGGER records_append_only"))
            s.execute(text("UPDATE credit.records SET severity = :v, hash = :h WHERE id = :i"),
                      {"v": severity, "h": rehashed, "i": head.id})
            s.execute(text("ALTER TABLE credit.records ENABLE TRIGGER records_append_only"))
    rewrite(1)
    try:
        with session_scope() as s:
            assert domain.verify_chain(store.chain(s))[1] is None  # without the checkpoint, nothing shows
        result = verify(credit)
        assert not result.intact and result.first_bad_record_id == head.id and "rewritten" in result.reason
        assert chain.checkpoint_chain() is None  # and no new checkpoint blesses it
    finally:
        rewrite(3)
    assert verify(credit).intact


def test_a_tail_cut_off_by_the_owner_is_caught_by_the_checkpoint(credit, credit_nameko):
    subject = enterprise(credit, _fresh_uscc(), "Cut Co.")
    head = add_record(credit, subject)
    assert _head_checkpointed(credit, head.id)
    kept = verify(credit).checkpoint
    with session_scope(_owner()) as s:
        s.execute(text("CREATE TEMP TABLE cut ON COMMIT PRESERVE ROWS AS SELECT * FROM credit.records WHERE id = :i"),
                  {"i": head.id})
        s.execute(text("ALTER TABLE credit.records DISABLE TRIGGER records_append_only"))
        s.execute(text("DELETE FROM credit.records WHERE id = :i"), {"i": head.id})
        s.execute(text("ALTER TABLE credit.records ENABLE TRIGGER records_append_only"))
        saved = s.execute(text("SELECT * FROM cut")).mappings().one()
    try:
        result = verify(credit)
        assert not result.intact and "records were removed" in result.reason
        assert result.records_checked == kept.record_count - 1
        assert chain.checkpoint_chain() is None
        from services.cli import main as gridbus
        with pytest.raises(SystemExit, match="does not hold its checkpoint: the chain has"):
            gridbus(["credit", "verify-chain"])
    finally:
        with session_scope(_owner()) as s:
            columns = ", ".join(saved.keys())
            s.execute(text(f"INSERT INTO credit.records ({columns}) VALUES ({', '.join(':' + c for c in saved.keys())})"),
                      dict(saved))
    assert verify(credit).intact


def test_the_cli_compares_the_chain_with_a_witness_copy(credit, credit_nameko, tmp_path, capsys):
    last = wait_for(lambda: verify(credit).checkpoint.signature and verify(credit).checkpoint)
    event = {"type": "credit.chain.checkpoint", "data": {
        "head_record_id": last.head_record_id or None, "head_hash": last.head_hash, "record_count": last.record_count,
        "at": last.at, "key_id": last.key_id, "signature": last.signature}}
    (tmp_path / "checkpoint.json").write_text(json.dumps(event))
    from services.cli import main as gridbus
    gridbus(["credit", "verify-chain", "--checkpoint", str(tmp_path / "checkpoint.json")])
    assert f"it holds the checkpoint of {last.at} ({last.record_count} records, key dev-checkpoint)" in \
        capsys.readouterr().out
