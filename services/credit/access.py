"""Who may call the credit registry's entry points (shared/access.py)."""
from __future__ import annotations

from shared.access import ANY, CITYWIDE, NOT_PERSONAL, OWN_GRIDS, OWN_RECORD, Table, allow

REGISTER = allow("register a subject", admin=ANY, service=CITYWIDE)
# A person's credit: registered in the caller's grids (no registered grid: a citywide caller),
# with a purpose; every read and every failed lookup is logged, and failed lookups are limited
# per caller. Enterprises' credit is not personal.
READ_SUBJECT = allow("read a subject, its records or its standing", officer=NOT_PERSONAL, department=OWN_GRIDS,
                     dispatcher=OWN_GRIDS, admin=OWN_GRIDS, service=CITYWIDE)
ADD_RECORD = allow("add a manual record (a dispatcher: about subjects registered in their grids)",
                   dispatcher=OWN_GRIDS, admin=ANY, service=CITYWIDE)
LISTS = allow("list the enterprises on the red or black list", department=ANY, dispatcher=ANY, admin=ANY,
              service=ANY)
VERIFY = allow("verify the hash chain", admin=ANY, department=ANY, service=ANY)
UNMATCHED = allow("list events that named no known subject", admin=ANY, service=ANY)
SEND = allow("send authorities' decisions (a department: its own authority's)", department=OWN_RECORD, admin=ANY,
             service=CITYWIDE)
APPLY_REPAIR = allow("record a credit repair application (a department: about its own decisions)",
                     department=OWN_RECORD, admin=ANY, service=CITYWIDE)
DECIDE_REPAIR = allow("decide a credit repair application", admin=ANY, service=ANY)
LIST_REPAIRS = allow("list credit repair applications", admin=ANY, department=ANY, service=ANY)
CHECK_RESTRICTION = allow("ask whether a list restricts an action (logged)", department=ANY, service=ANY)
PUBLIC_PROFILE = allow("read an enterprise's public profile", public=NOT_PERSONAL, department=NOT_PERSONAL,
                       dispatcher=NOT_PERSONAL, admin=NOT_PERSONAL, service=NOT_PERSONAL)
HEALTH = allow("check health", public=ANY)

TABLE = Table(
    "credit",
    grpc={"RegisterSubject": REGISTER, "GetSubject": READ_SUBJECT, "ListRecords": READ_SUBJECT,
          "AddRecord": ADD_RECORD, "GetStanding": READ_SUBJECT, "ListMembers": LISTS, "VerifyChain": VERIFY,
          "ListUnmatched": UNMATCHED, "AddExternalRecord": SEND, "ImportRecords": SEND,
          "ApplyRepair": APPLY_REPAIR, "DecideRepair": DECIDE_REPAIR, "ListRepairs": LIST_REPAIRS,
          "CheckRestriction": CHECK_RESTRICTION},
    rpc={"health": HEALTH, "get_standing": READ_SUBJECT},
    http={"GET /credit/v1/enterprises/{code}": PUBLIC_PROFILE, "GET /credit/v1/enterprises": PUBLIC_PROFILE},
)
