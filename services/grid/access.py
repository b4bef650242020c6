"""Who may call the grid service's entry points (shared/access.py)."""
from __future__ import annotations

from shared.access import ANY, CITYWIDE, OWN_DISTRICT, OWN_GRIDS, OWN_RECORD, Table, allow

LOCATE = allow("pin a point to its grid", officer=ANY, dispatcher=ANY, admin=ANY, service=ANY, department=ANY)
READ_UNIT = allow("read a unit", officer=OWN_GRIDS, dispatcher=OWN_GRIDS, admin=OWN_GRIDS, service=CITYWIDE)
TILES = allow("read map tiles (clipped to the caller's grids)", officer=ANY, dispatcher=ANY, admin=ANY,
              service=ANY)
IMPORT_UNITS = allow("import unit boundaries", admin=OWN_DISTRICT, service=CITYWIDE)
CREATE_MEMBER = allow("create a member (assigned later)", admin=ANY)
# A member of the caller's district: every grid they are assigned to lies in it (an admin also
# reads and manages members assigned nowhere yet, to assign them).
READ_MEMBER = allow("read a member", officer=OWN_RECORD, dispatcher=OWN_GRIDS, admin=OWN_DISTRICT,
                    service=CITYWIDE)
UPDATE_MEMBER = allow("change a member (themselves: only their on-duty state)", admin=OWN_DISTRICT,
                      dispatcher=OWN_RECORD, officer=OWN_RECORD)
ASSIGN_MEMBER = allow("assign or release a member", admin=OWN_DISTRICT)
LIST_MEMBERS = allow("list the members of a subtree", officer=OWN_GRIDS, dispatcher=OWN_GRIDS,
                     admin=OWN_GRIDS, service=CITYWIDE)
REPORT_POSITION = allow("report where one is", officer=OWN_RECORD, dispatcher=OWN_RECORD, admin=OWN_RECORD)
HEALTH = allow("check health", public=ANY)
SIGN_IN = allow("sign in, refresh or end one's session (the credentials are the check)", public=ANY)

TABLE = Table(
    "grid",
    grpc={"Locate": LOCATE, "LocateMany": LOCATE, "GetUnit": READ_UNIT, "ListChildren": READ_UNIT,
          "ImportUnits": IMPORT_UNITS, "CreateMember": CREATE_MEMBER, "GetMember": READ_MEMBER,
          "UpdateMember": UPDATE_MEMBER, "AssignMember": ASSIGN_MEMBER, "ReleaseMember": ASSIGN_MEMBER,
          "ListMembers": LIST_MEMBERS, "ReportPosition": REPORT_POSITION, "GetTile": TILES,
          "SignIn": SIGN_IN, "Refresh": SIGN_IN, "SignOut": SIGN_IN},
    rpc={"health": HEALTH, "locate": LOCATE, "get_unit": READ_UNIT, "list_children": READ_UNIT,
         "get_member": READ_MEMBER, "list_members": LIST_MEMBERS},
)
