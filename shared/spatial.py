"""Which polygon covers a point, answered from memory, and kept in step with the database.

Any process that pins points (grid's servers; incidents when it pins a report) holds a
`LiveIndex` of the leaf grids. It loads (key, record, WKB) rows through a loader the service
provides, builds an immutable `PolygonIndex`, and rebuilds it when PostgreSQL sends a NOTIFY on
the service's channel (a trigger on the table sends it when a transaction that changed rows
commits, from any process). The new index is built aside in a background thread while lookups
go on answering from the old one; one reference assignment then swaps it in, so a lookup sees
the old index or the new one, never part of either.

The answer is PostGIS's: `ST_Covers(geom, point)` (a point on a polygon's boundary is covered),
and where several polygons cover the point (a shared border or corner) the lowest key wins.
For a single point, "covers" and "intersects" are the same relation, which GEOS answers from
the coordinates without building a point geometry. Lookups may run in many threads at once.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from typing import Any, Callable, Generic, Iterable, Sequence, TypeVar

import numpy as np
import psycopg
import shapely

log = logging.getLogger(__name__)

R = TypeVar("R")
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None)
Row = tuple[str, Any, bytes]  # (key, record, WKB of a polygon or multipolygon)
NOWHERE = -1


class PolygonIndex(Generic[R]):
    """An immutable STRtree over polygons; each polygon carries a key and a record."""

    def __init__(self, rows: Iterable[Row]):
        ordered = sorted(rows, key=lambda row: row[0])  # position order is key order: the lowest wins
        self.keys: list[str] = [row[0] for row in ordered]
        self.records: list[R] = [row[1] for row in ordered]
        self._keys_then_none = np.array([*self.keys, None], dtype=object)  # [NOWHERE] is None
        # Not shapely.prepare()d: GEOS's prepared polygons corrupt the heap when threads query them
        # at once (shapely 2.2, GEOS 3.14: "double free or corruption"), and grids are small
        # enough that a plain point-in-polygon test costs the same (~100 vertices: ~2 us a point).
        self._polygons = shapely.from_wkb([row[2] for row in ordered])
        self._tree = shapely.STRtree(self._polygons)
        # GEOS builds the tree on its first query: build it here, so lookups only ever read it.
        self._tree.query(shapely.points(0.0, 0.0))

    def __len__(self) -> int:
        return len(self.keys)

    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) of all the polygons."""
        return tuple(shapely.total_bounds(self._polygons).tolist())

    def position(self, lon: float, lat: float) -> int:
        """The position of the lowest-keyed polygon covering the point, or NOWHERE."""
        candidates = self._tree.query(shapely.Point(lon, lat))
        if candidates.size == 0:
            return NOWHERE
        covering = candidates[shapely.intersects_xy(self._polygons[candidates], lon, lat)]
        return int(covering.min()) if covering.size else NOWHERE

    def locate(self, lon: float, lat: float) -> R | None:
        at = self.position(lon, lat)
        return None if at == NOWHERE else self.records[at]

    def positions(self, lons: Sequence[float], lats: Sequence[float]) -> np.ndarray:
        """position() for many points at once: one tree query and one vectorized predicate."""
        lons, lats = np.asarray(lons, dtype=float), np.asarray(lats, dtype=float)
        found = np.full(lons.shape, len(self.keys), dtype=np.int64)
        if lons.size and len(self.keys):
            point_at, polygon_at = self._tree.query(shapely.points(lons, lats))
            covers = shapely.intersects_xy(self._polygons[polygon_at], lons[point_at], lats[point_at])
            np.minimum.at(found, point_at[covers], polygon_at[covers])
        found[found == len(self.keys)] = NOWHERE
        return found

    def keys_at(self, positions: np.ndarray) -> list[str | None]:
        """The keys at positions() (None where NOWHERE)."""
        return self._keys_then_none[positions].tolist()


def _release_freed_memory() -> None:
    """glibc keeps what the old index and the loaded rows freed in its arenas, resident: ~150 MB
    after each rebuild of a city of 2 million vertices. malloc_trim hands it back to the system."""
    trim = getattr(_LIBC, "malloc_trim", None)  # glibc only; elsewhere the memory stays reserved
    if trim is not None:
        trim(0)


class LiveIndex(Generic[R]):
    """The current PolygonIndex of some table, rebuilt after every committed change to it.

    `load()` returns the rows (it runs in the rebuilding thread; under eventlet, on a green
    thread, so it may use the database like any other code there). `offload(build, rows)` runs
    the CPU-bound build: directly by default, or e.g. in eventlet's real-thread pool."""

    def __init__(self, load: Callable[[], Iterable[Row]], dsn: str, channel: str, *,
                 offload: Callable[..., PolygonIndex] | None = None, settle: float = 0.05,
                 retry_max: float = 5.0, name: str = "index"):
        self._load = load
        self._dsn = dsn
        self._channel = channel
        self._offload = offload or (lambda build, rows: build(rows))
        self._settle = settle
        self._retry_max = retry_max
        self._name = name
        self._index: PolygonIndex[R] | None = None
        self._listener: psycopg.Connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._building = threading.Lock()  # one build at a time: the watcher's or a caller's
        self._loaded_at = float("-inf")    # when the current index's rows began to be read
        self.generation = 0          # how many indexes have been swapped in
        self.last_build_seconds = 0.0

    @property
    def current(self) -> PolygonIndex[R]:
        """The index to answer from; take it once per request and use that one throughout."""
        index = self._index
        if index is None:
            raise RuntimeError(f"{self._name} is not started")
        return index

    def start(self) -> "LiveIndex[R]":
        """Listens first, then builds, so no commit between the two goes unnoticed; then watches."""
        self._listen()
        self.rebuild()
        self._thread = threading.Thread(target=self._watch, name=f"{self._name}-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def rebuild(self) -> PolygonIndex[R]:
        with self._building:
            return self._build()

    def loaded_since(self, moment: float) -> PolygonIndex[R]:
        """An index whose rows were read at or after `moment` (time.monotonic()): for a caller that
        learned at `moment` that the database holds a change the current index lacks (its NOTIFY
        not acted on yet). Callers asking at once share one build."""
        with self._building:
            if self._loaded_at >= moment:
                return self._index
            return self._build()

    def _build(self) -> PolygonIndex[R]:
        started, loaded_at = time.perf_counter(), time.monotonic()
        index = self._offload(PolygonIndex, list(self._load()))
        self._index, self._loaded_at = index, loaded_at  # the swap: one reference, replaced whole
        _release_freed_memory()
        self.generation += 1
        self.last_build_seconds = time.perf_counter() - started
        log.info("%s: %d polygons indexed in %.2fs (generation %d)",
                 self._name, len(index), self.last_build_seconds, self.generation)
        return index

    def _listen(self) -> psycopg.Connection:
        if self._listener is None:
            self._listener = psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)
            self._listener.execute(f"LISTEN {self._channel}")
        return self._listener

    def _close(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            except Exception as exc:  # the database is already gone
                log.debug("%s: closing a dead listener: %s", self._name, exc)
            self._listener = None

    def _notified(self, timeout: float) -> bool:
        return any(True for _ in self._listen().notifies(timeout=timeout, stop_after=1))

    def _watch(self) -> None:
        backoff = 0.1
        missed = False  # after losing the listener, a change may have gone unheard
        while not self._stop.is_set():
            try:
                if self._notified(timeout=0.25) or missed:
                    # A burst of commits (an import in chunks) is one rebuild, not one each.
                    while self._notified(timeout=self._settle):
                        pass
                    missed = False
                    self.rebuild()
                backoff = 0.1
            except Exception as exc:  # database down or the rebuild failed: keep the old index
                log.warning("%s: %s; the current index stays, retrying in %.1fs", self._name, exc, backoff)
                self._close()
                missed = True
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._retry_max)
        self._close()
