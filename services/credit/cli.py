"""`gridbus credit ...`: the registry's operators' commands (on the database, as the system)."""
from __future__ import annotations


def register(sub) -> None:
    c = sub.add_parser("credit", help="credit registry: verify the chain, standing, unmatched events")
    s = c.add_subparsers(dest="action", required=True)
    s.add_parser("verify-chain", help="recompute the hash chain; exit 1 naming the first bad record").set_defaults(
        func=verify_chain_)
    st = s.add_parser("standing", help="score and lists of an enterprise, now or as of a time")
    st.add_argument("uscc")
    st.add_argument("--as-of", default=None, help="ISO time with zone")
    st.set_defaults(func=standing_)
    s.add_parser("unmatched", help="closed incidents whose subject the registry could not match").set_defaults(
        func=unmatched_)


def verify_chain_(args) -> None:
    from services.credit import operations as ops
    from shared.cli import operator_principal
    checked, broken = ops.verify_chain(operator_principal())
    if broken:
        raise SystemExit(f"chain broken at record {broken.record_id} (seq {broken.seq}): {broken.reason}; "
                         f"{checked} records before it are intact")
    print(f"chain intact: {checked} records")


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
