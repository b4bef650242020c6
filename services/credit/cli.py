"""`gridbus credit ...`: the registry's operators' commands (on the database, as the system)."""
from __future__ import annotations


def register(sub) -> None:
    c = sub.add_parser("credit", help="credit registry: verify the chain, standing, unmatched events")
    s = c.add_subparsers(dest="action", required=True)
    vc = s.add_parser("verify-chain", help="recompute the hash chain and compare it with a signed checkpoint; "
                                           "exit 1 saying what does not match")
    vc.add_argument("--checkpoint", metavar="FILE", help="a credit.chain.checkpoint event (or its data) a witness "
                                                         "kept, as JSON (default: the last one the registry published)")
    vc.set_defaults(func=verify_chain_)
    kg = s.add_parser("checkpoint-keygen", help="a new key pair for the chain's checkpoints: the private key for "
                                                "GRIDBUS_CREDIT_CHECKPOINT_KEY, the public one for ..._VERIFY_KEYS")
    kg.add_argument("--key-id", required=True, help="a name for the key, e.g. checkpoint-2026 (letters, digits, . _ -)")
    kg.set_defaults(func=checkpoint_keygen_)
    st = s.add_parser("standing", help="score and lists of an enterprise, now or as of a time")
    st.add_argument("uscc")
    st.add_argument("--as-of", default=None, help="ISO time with zone")
    st.set_defaults(func=standing_)
    s.add_parser("unmatched", help="closed incidents whose subject the registry could not match").set_defaults(
        func=unmatched_)
    la = s.add_parser("load-authorities", help="check and load the authorities, their lists and what lists restrict")
    la.add_argument("file", nargs="?", default=None, help="YAML (default: the bundled sample)")
    la.set_defaults(func=load_authorities_)
    im = s.add_parser("import", help="records from another department: a CSV or JSON lines file (README: the schema)")
    im.add_argument("file", help="path, or - for stdin (then give --format)")
    im.add_argument("--format", choices=["csv", "jsonl"], help="default: from the file's extension")
    im.add_argument("--report", help="write every row's outcome to this CSV file (line,outcome,record_id,message)")
    im.set_defaults(func=import_)
    rp = s.add_parser("repair", help="credit repair: record an application, decide it, show a record's history")
    rps = rp.add_subparsers(dest="repair_action", required=True)
    ap = rps.add_parser("apply", help="record an enterprise's application to repair a record")
    ap.add_argument("record_id")
    ap.add_argument("--applicant", required=True)
    ap.add_argument("--evidence", required=True, help="how the violation was corrected")
    ap.add_argument("--corrected-on", required=True, help="YYYY-MM-DD")
    ap.set_defaults(func=repair_apply_)
    dc = rps.add_parser("decide", help="approve or refuse an application, with the reason")
    dc.add_argument("application_id")
    yes_no = dc.add_mutually_exclusive_group(required=True)
    yes_no.add_argument("--approve", action="store_true")
    yes_no.add_argument("--refuse", action="store_true")
    dc.add_argument("--reason", required=True)
    dc.set_defaults(func=repair_decide_)
    ls = rps.add_parser("list", help="applications and decisions about an enterprise's records")
    ls.add_argument("uscc")
    ls.set_defaults(func=repair_list_)
    ck = s.add_parser("check", help="is an enterprise on a list that restricts an action today (logged)")
    ck.add_argument("uscc")
    ck.add_argument("--action", required=True, help="e.g. public_procurement, subsidy")
    ck.add_argument("--purpose", required=True)
    ck.set_defaults(func=check_)


def verify_chain_(args) -> None:
    import json

    from services.credit import chain, checkpoint
    from shared.cli import operator_principal
    kept = None
    if args.checkpoint:
        with open(args.checkpoint, encoding="utf-8") as f:
            doc = json.load(f)
        kept = checkpoint.from_payload(doc.get("data", doc) if isinstance(doc, dict) else {})
    verdict = chain.verify(operator_principal(), kept)
    broken, against = verdict.broken, verdict.checkpoint
    if broken and broken.record_id:
        raise SystemExit(f"chain broken at record {broken.record_id} (seq {broken.seq}): {broken.reason}; "
                         f"{verdict.checked} records before it are intact")
    if broken:
        raise SystemExit(f"chain does not hold its checkpoint: {broken.reason}")
    held = (f"; it holds the checkpoint of {against.at} ({against.record_count} records, key {against.key_id})"
            if against else "; no checkpoint to compare with yet")
    print(f"chain intact: {verdict.checked} records{held}")


def checkpoint_keygen_(args) -> None:
    import base64
    import os

    from services.credit import checkpoint
    from shared.config import settings
    private = f"{args.key_id}:{base64.b64encode(os.urandom(32)).decode()}"
    try:
        key_id, seed = settings({"GRIDBUS_CREDIT_CHECKPOINT_KEY": private}).credit_checkpoint_key
    except RuntimeError as exc:
        raise SystemExit(f"gridbus: --key-id: {exc}")
    print(f"GRIDBUS_CREDIT_CHECKPOINT_KEY={private}")
    print(f"GRIDBUS_CREDIT_CHECKPOINT_VERIFY_KEYS={key_id}:{base64.b64encode(checkpoint.public_key(seed)).decode()}")


def standing_(args) -> None:
    from datetime import datetime

    from services.credit import operations as ops
    from shared.cli import operator_principal
    me = operator_principal()
    subject = ops.get_subject(me, uscc=args.uscc)
    s = ops.get_standing(me, subject.id, datetime.fromisoformat(args.as_of) if args.as_of else None)
    print(f"{s.subject.code} {s.subject.name}: score {s.score}, lists {', '.join(s.lists) or 'none'}, "
          f"{s.records_in_force} records in force as of {s.as_of:%Y-%m-%d %H:%M}")


def unmatched_(args) -> None:
    from services.credit import operations as ops
    from shared.cli import operator_principal
    for u in ops.list_unmatched(operator_principal()):
        print(f"{u.at:%Y-%m-%d %H:%M} incident {u.incident_id} {u.subject_type}:{u.subject_ref} - {u.reason}")


def load_authorities_(args) -> None:
    import yaml

    from services.credit import intake
    from shared.cli import operator_principal
    with open(args.file or intake.DIRECTORY_FILE, encoding="utf-8") as f:
        counts = intake.load_authorities(operator_principal(), yaml.safe_load(f))
    print(", ".join(f"{table}: {loaded} loaded, {gone} deactivated" for table, (loaded, gone) in counts.items()))


def import_(args) -> None:
    import csv
    import sys

    from services.credit import intake, sharing
    from shared.cli import operator_principal, progress
    fmt = args.format or ("csv" if args.file.lower().endswith(".csv") else
                          "jsonl" if args.file.lower().endswith((".jsonl", ".ndjson")) else None)
    if fmt is None:
        raise SystemExit("gridbus: give --format csv or jsonl")
    stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8-sig", newline="")
    with stream:
        items = list(sharing.read_csv(stream) if fmt == "csv" else sharing.read_jsonl(stream))
    with progress(len(items), "importing", "rows") as step:
        report = intake.import_records(operator_principal(), items, progress=step)
    for o in report.outcomes:
        if o.outcome != intake.INSERTED:
            print(f"line {o.line}: {o.outcome}: {o.message}" + (f" (record {o.record_id})" if o.record_id else ""))
    if args.report:
        with open(args.report, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "outcome", "record_id", "message"])
            writer.writerows([o.line, o.outcome, o.record_id or "", o.message] for o in report.outcomes)
    print(f"inserted {report.count(intake.INSERTED)}, duplicates {report.count(intake.DUPLICATE)}, "
          f"refused {report.count(intake.REFUSED)}")
    if report.count(intake.REFUSED):
        raise SystemExit(1)


def _show_repair(a) -> None:
    decided = f"; {a.status} by {a.decided_by} on {a.decided_at:%Y-%m-%d}: {a.decision_reason}" if a.decided_by else ""
    repaired = f"; repair record {a.repair_record_id}" if a.repair_record_id else ""
    print(f"{a.id} record {a.record_id}: applied {a.applied_on} by {a.applicant} ({a.status}){decided}{repaired}")


def repair_apply_(args) -> None:
    from services.credit import repair
    from shared.cli import operator_principal
    _show_repair(repair.apply_repair(operator_principal(), record_id=args.record_id, applicant=args.applicant,
                                     evidence=args.evidence, corrected_on=args.corrected_on))


def repair_decide_(args) -> None:
    from services.credit import repair
    from shared.cli import operator_principal
    _show_repair(repair.decide_repair(operator_principal(), application_id=args.application_id, approve=args.approve,
                                      reason=args.reason))


def repair_list_(args) -> None:
    from services.credit import operations as ops, repair
    from shared.cli import operator_principal
    me = operator_principal()
    for a in repair.list_repairs(me, subject_id=ops.get_subject(me, uscc=args.uscc).id):
        _show_repair(a)


def check_(args) -> None:
    from services.credit import disclosure
    from shared.cli import operator_principal
    answer = disclosure.check_restriction(operator_principal(), action=args.action, purpose=args.purpose, uscc=args.uscc)
    if not answer.restricted:
        print(f"{args.uscc}: not restricted for {args.action}" + ("" if answer.subject_known else
                                                                   " (the registry holds nothing about it)"))
    for m in answer.restrictions:
        print(f"{args.uscc}: RESTRICTED for {args.action} by {m.code} ({m.name}), "
              f"{m.authority_name or 'the registry'}, {m.decision_number or '-'}, basis: {m.basis}")
