"""Incidents pins reports from its own in-memory index of grid's leaf grids: the same answer as
PostGIS (grid.locate, the border rule included) on random points and on points exactly on shared
edges and corners; reports while an import swaps the index are pinned to the old cut or the new
one, never refused; a grid imported a moment ago is pinned even before its NOTIFY is acted on."""
import importlib.util
import random
import threading
import uuid
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demo.city import CityPlan
from services.grid import operations as grid_ops
from services.grid import store as grid_store
from services.incidents import store
from services.incidents.operations import pinning
from shared.db import engine, session_scope
from shared.spatial import LiveIndex, PolygonIndex
from tests.conftest import SYSTEM
from tests.grid.cities import jittered
from tests.grid.test_locate_index import BORDERS_DOC, CITY_CORNERS, EDGES, POINT, VERTICES, postgis
from tests.incidents.conftest import report_request
from tests.support import metadata, token, wait_for

# Re-cut while reports keep coming: the same codes, other shapes.
RECUT = CityPlan(city_code="360500", name="Recut City", west=115.8, south=30.5, east=116.2, north=30.8,
                 grids_x=4, grids_y=4)
# Imported while the test's index is not listening.
LATE = CityPlan(city_code="360600", name="Late City", west=115.8, south=31.5, east=116.2, north=31.8,
                grids_x=2, grids_y=2)
SERVICE_TOKEN = metadata(token("service", member_id="pinning-test"))


def _migration_channel() -> str:
    path = Path(grid_store.__file__).parent / "migrations" / "versions" / "0004_leaf_index_notify.py"
    spec = importlib.util.spec_from_file_location("grid_0004", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CHANNEL


def test_incidents_listens_where_grid_notifies():
    assert store.LEAF_GRIDS_CHANNEL == grid_store.LEAF_GRIDS_CHANNEL == _migration_channel()


@pytest.fixture(scope="module")
def borders(environment, city):
    grid_ops.import_units(SYSTEM, BORDERS_DOC)
    index = PolygonIndex(pinning._rows())
    return lambda points: [None if (at := index.locate(x, y)) is None else at[-1] for x, y in points]


def _pinned(points):
    with session_scope() as session:
        return [(p[0] if (p := pinning.pin(session, x, y)) else None) for x, y in points]


def test_every_vertex_and_edge_midpoint_pins_as_postgis_says(borders):
    points = VERTICES + [((a[0] + b[0]) / 2, (a[1] + b[1]) / 2) for a, b in EDGES] + CITY_CORNERS
    expected = postgis(points)
    assert borders(points) == expected
    assert _pinned(points) == expected


def test_the_lineage_is_grids(borders):
    x, y = VERTICES[len(VERTICES) // 2]
    with session_scope() as session:
        code, lineage = pinning.pin(session, x, y)
        assert lineage == store.unit_lineage(session, code)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(points=st.lists(POINT, min_size=1, max_size=40))
def test_random_border_and_vertex_points_pin_as_postgis_says(borders, points):
    assert _pinned(points) == postgis(points)


def _report(stub, x, y):
    req = report_request(at=(x, y), report_id=str(uuid.uuid4()))
    return stub.Report(req, metadata=SERVICE_TOKEN).incident.grid_code


def test_reports_while_an_import_swaps_the_index_pin_to_the_old_cut_or_the_new_one(stub):
    rng = random.Random(5)
    probes = [(rng.uniform(RECUT.west, RECUT.east), rng.uniform(RECUT.south, RECUT.north)) for _ in range(40)]
    grid_ops.import_units(SYSTEM, jittered(RECUT, seed=1))
    before = postgis(probes)
    wait_for(lambda: [_report(stub, x, y) for x, y in probes[:5]] == before[:5], 30,
             what="the incidents server to pin by the first cut")

    seen: list[tuple[int, str]] = []
    errors: list[Exception] = []
    stop = threading.Event()

    def report_on(offset: int):
        i = offset
        while not stop.is_set():
            x, y = probes[i % len(probes)]
            try:
                seen.append((i % len(probes), _report(stub, x, y)))
            except grpc.RpcError as exc:
                errors.append(exc)
            i += 1

    reporters = [threading.Thread(target=report_on, args=(k * 20,)) for k in range(2)]
    for t in reporters:
        t.start()
    try:
        wait_for(lambda: len(seen) > 10, what="reports before the re-cut")
        grid_ops.import_units(SYSTEM, jittered(RECUT, seed=2))
        after = postgis(probes)
        assert sum(a != b for a, b in zip(before, after)) > 5  # the cut moved probes
        moved = [i for i in range(len(probes)) if before[i] != after[i]]
        wait_for(lambda: errors or all(any(j == i and code == after[i] for j, code in seen[-200:]) for i in moved),
                 60, what="reports pinned by the new cut")
    finally:
        stop.set()
        for t in reporters:
            t.join()
    assert not errors, errors[:3]
    assert all(code in (before[i], after[i]) for i, code in seen)
    assert any(before[i] != after[i] and code == before[i] for i, code in seen)  # the old cut was seen too


def test_a_grid_imported_before_the_index_heard_of_it_is_pinned(environment, city, monkeypatch):
    dsn = engine().url.set(drivername="postgresql").render_as_string(hide_password=False)
    deaf = LiveIndex(pinning._rows, dsn, store.LEAF_GRIDS_CHANNEL, name="deaf")  # built, never listening
    deaf.rebuild()
    monkeypatch.setattr(pinning, "_live", deaf)
    x, y = (LATE.west + LATE.east) / 2 + 0.001, (LATE.south + LATE.north) / 2 + 0.001
    with session_scope() as session:
        assert pinning.pin(session, x, y) is None
    grid_ops.import_units(SYSTEM, jittered(LATE, seed=1))
    [expected] = postgis([(x, y)])
    assert expected is not None and deaf.current.locate(x, y) is None  # the index has not heard
    with session_scope() as session:
        code, lineage = pinning.pin(session, x, y)
    assert code == expected and lineage[0] == LATE.city_code and deaf.generation == 2
    with session_scope() as session:  # a point outside every grid rebuilds nothing
        assert pinning.pin(session, 10.0, 10.0) is None
    assert deaf.generation == 2
