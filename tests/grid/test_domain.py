"""Unit tests of the grid rules: plain Python, no database, no broker."""
import math

import pytest

from services.grid import domain
from shared import auth, units
from shared.auth import Principal
from shared.errors import InvalidArgument, PermissionDenied


@pytest.mark.parametrize("code, level, parent", [
    ("330100", "city", None), ("330106", "district", "330100"), ("330106001", "street", "330106"),
    ("330106001002", "community", "330106001"), ("330106001002003", "grid", "330106001002"),
])
def test_a_code_tells_its_level_and_parent(code, level, parent):
    assert units.level_of(code) == level
    assert units.parent_of(code) == parent


def test_lineage_runs_from_the_city_down():
    assert units.lineage("330106001002003") == ["330100", "330106", "330106001", "330106001002", "330106001002003"]
    assert units.ancestors("330100") == []


@pytest.mark.parametrize("code, words", [
    ("", "digits only"), ("33010a", "digits only"), ("3301", "6, 9, 12 or 15"), ("001100", "province"),
    ("330106000", "start at 001"), ("330100001", "county-level"), (330106, "digits only"),
])
def test_malformed_codes_are_refused(code, words):
    with pytest.raises(InvalidArgument, match=words):
        units.level_of(code)


@pytest.mark.parametrize("lon, lat", [(math.nan, 0), (0, math.inf), (180.0001, 0), (0, -90.5), ("1", 2), (True, 1)])
def test_bad_points(lon, lat):
    with pytest.raises(InvalidArgument):
        domain.check_point(lon, lat)


def test_edge_points_are_fine():
    assert domain.check_point(-180, 90) == (-180.0, 90.0)


def _feature(**props):
    return {"type": "Feature", "properties": {"code": "330106001002003", "name": "G", **props},
            "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}


def test_parse_feature_makes_a_multipolygon_draft():
    draft = domain.parse_feature(4, _feature())
    assert (draft.index, draft.level, draft.parent_code) == (4, "grid", "330106001002")
    assert draft.geometry["type"] == "MultiPolygon" and len(draft.geometry["coordinates"]) == 1


def test_feature_collection_sorts_parents_first_and_refuses_repeats():
    city = {**_feature(), "properties": {"code": "330100", "name": "C"}}
    drafts = domain.parse_feature_collection({"type": "FeatureCollection", "features": [_feature(), city]})
    assert [d.code for d in drafts] == ["330100", "330106001002003"]
    with pytest.raises(InvalidArgument, match="repeats feature 0"):
        domain.parse_feature_collection({"type": "FeatureCollection", "features": [_feature(), _feature()]})
    with pytest.raises(InvalidArgument, match="FeatureCollection"):
        domain.parse_feature_collection({"type": "Feature"})
    with pytest.raises(InvalidArgument, match="no features"):
        domain.parse_feature_collection({"type": "FeatureCollection", "features": []})


def test_member_fields_and_assignment_levels():
    domain.check_member_fields(name="Li", phone="+8613800000000", role="officer")
    with pytest.raises(InvalidArgument):
        domain.check_member_fields(name="  ")
    with pytest.raises(InvalidArgument):
        domain.check_member_fields(role="mayor")
    domain.check_assignable("dispatcher", "330106")
    domain.check_assignable("dispatcher", "330100")  # a shift leader runs the city
    with pytest.raises(InvalidArgument, match="officer is assigned to a grid"):
        domain.check_assignable("officer", "330106001")
    with pytest.raises(InvalidArgument, match="dispatcher is assigned to a city or district or street"):
        domain.check_assignable("dispatcher", "330106001002")


OFFICER = Principal("m1", auth.OFFICER, ("330106001002003",))
DISPATCHER = Principal("d1", auth.DISPATCHER, ("330106",))
ADMIN = Principal("a1", auth.ADMIN, ("330100",))


def test_scopes_follow_the_hierarchy():
    domain.may_read_unit(DISPATCHER, "330106001002003")
    domain.may_read_unit(OFFICER, "330106001002003")
    with pytest.raises(PermissionDenied):
        domain.may_read_unit(OFFICER, "330106001002")  # not even its own community
    with pytest.raises(PermissionDenied):
        domain.may_read_unit(DISPATCHER, "330107")
    with pytest.raises(PermissionDenied):
        domain.may_manage_unit(DISPATCHER, "330106")
    domain.may_manage_unit(ADMIN, "330106")


def test_member_policies():
    domain.may_update_member(OFFICER, "m1", {"on_duty"}, ["330106001002001"])
    with pytest.raises(PermissionDenied):
        domain.may_update_member(OFFICER, "m1", {"on_duty", "name"}, ["330106001002001"])
    with pytest.raises(PermissionDenied):  # another's
        domain.may_update_member(OFFICER, "m2", {"on_duty"}, ["330106001002001"])
    with pytest.raises(PermissionDenied):
        domain.may_report_position(ADMIN, "m1")
    domain.may_read_member(DISPATCHER, "m2", ["330106001002001"])
    with pytest.raises(PermissionDenied):
        domain.may_read_member(DISPATCHER, "m2", ["330107001002001"])
    with pytest.raises(PermissionDenied):
        domain.may_read_member(DISPATCHER, "m2", [])
    domain.may_read_member(ADMIN, "m2", [])  # admins see unassigned members, to assign them
    district_admin = Principal("a2", auth.ADMIN, ("330106",))
    domain.may_update_member(district_admin, "m2", {"active"}, ["330106001002001"])
    with pytest.raises(PermissionDenied):  # a member of another district
        domain.may_update_member(district_admin, "m2", {"active"}, ["330106001002001", "330107001002001"])
    with pytest.raises(PermissionDenied):
        domain.may_assign(district_admin, "m2", "330106001002001", ["330107001002001"])
    assert domain.mask_for(DISPATCHER, "m2", "13812345678") == "138****5678"
    assert domain.mask_for(ADMIN, "m2", "13812345678") == "13812345678"
