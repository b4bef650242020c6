"""Reading the boundary files cities have into a GeoJSON FeatureCollection in WGS 84.

GeoJSON (a file ending .geojson/.json, or "-" for stdin) is read as JSON, so coordinates
already in WGS 84 pass through untouched. Everything else (ESRI Shapefile, GeoPackage, and
whatever else GDAL reads) goes through pyogrio. Coordinates are transformed to WGS 84 by PROJ
(pyproj) from the file's own coordinate reference system, or from `crs` when the file names
none (a Shapefile without its .prj) or names the wrong one.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from shared.errors import InvalidArgument

GEOJSON_SUFFIXES = (".geojson", ".json")
WGS84 = "EPSG:4326"


@dataclass
class Source:
    feature_collection: dict
    crs_name: str  # the coordinate reference system the coordinates came in


def read(path: str, *, layer: str | None = None, crs: str | None = None, encoding: str | None = None) -> Source:
    if path == "-" or Path(path).suffix.lower() in GEOJSON_SUFFIXES:
        if layer or encoding:
            raise InvalidArgument("--layer and --encoding are for Shapefiles and GeoPackages, not GeoJSON")
        return read_geojson(sys.stdin.read() if path == "-" else _read_text(path), crs)
    return _read_with_gdal(path, layer, crs, encoding)


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument(f"{path}: cannot read: {exc.strerror}")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"{path}: GeoJSON must be UTF-8: {exc}")


def read_geojson(raw: str | bytes, crs: str | None = None) -> Source:
    """GeoJSON is WGS 84 (RFC 7946); an old-style "crs" member, or `crs`, says otherwise."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"the GeoJSON is not JSON: {exc}")
    except RecursionError:  # arrays or objects nested thousands deep: no boundary file is
        raise InvalidArgument("the GeoJSON is nested too deeply")
    declared = crs or _legacy_crs_member(doc)
    if declared is None:
        return Source(doc, WGS84)
    source = resolve_crs(declared)
    if not _is_wgs84(source):
        transform = _to_wgs84(source)
        for feature in doc.get("features") or []:
            if isinstance(feature, dict):
                feature["geometry"] = _transform_geojson(feature.get("geometry"), transform)
    return Source(doc, describe(source))


def _legacy_crs_member(doc) -> str | None:
    try:
        return doc["crs"]["properties"]["name"]
    except (KeyError, TypeError):
        return None


def resolve_crs(text: str):
    import pyproj
    try:
        return pyproj.CRS.from_user_input(text)
    except pyproj.exceptions.CRSError as exc:
        raise InvalidArgument(f"unknown coordinate reference system {text!r}: {exc}")


def describe(crs) -> str:
    authority = crs.to_authority(min_confidence=90)
    return f"{':'.join(authority)} ({crs.name})" if authority else crs.name


def _is_wgs84(crs) -> bool:
    return crs.equals(WGS84, ignore_axis_order=True)


def _to_wgs84(crs):
    import pyproj
    return pyproj.Transformer.from_crs(crs, WGS84, always_xy=True).transform


def _transform_geojson(geometry, transform):
    """A (Multi)Polygon's positions transformed; anything else is left for the import's own
    checks to name."""
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        return geometry
    polygons = [geometry.get("coordinates")] if geometry["type"] == "Polygon" else geometry.get("coordinates")
    try:
        moved = [[_transform_ring(ring, transform) for ring in polygon] for polygon in polygons]
    except (TypeError, IndexError, ValueError):
        return geometry
    return {"type": "MultiPolygon", "coordinates": moved}


def _transform_ring(ring, transform) -> list[list[float]]:
    xs, ys = transform([p[0] for p in ring], [p[1] for p in ring])
    return [[x, y] for x, y in zip(xs, ys)]


def _read_with_gdal(path: str, layer: str | None, crs: str | None, encoding: str | None) -> Source:
    import numpy as np
    import pyogrio
    import shapely
    from pyogrio.errors import DataSourceError, DataLayerError

    try:
        layers = [name for name, _ in pyogrio.list_layers(path)]
        if layer is None and len(layers) > 1:
            raise InvalidArgument(f"{path} has {len(layers)} layers ({', '.join(layers)}): choose one with --layer")
        meta, _, wkb, columns = pyogrio.raw.read(path, layer=layer, encoding=encoding, force_2d=True)
    except (DataSourceError, DataLayerError) as exc:
        raise InvalidArgument(f"{path}: cannot read: {exc}")
    declared = crs or meta.get("crs")
    if declared is None:
        raise InvalidArgument(f"{path} names no coordinate reference system (a Shapefile without its .prj?): "
                              f"give it with --crs, e.g. --crs EPSG:4549 for CGCS2000 / 3-degree Gauss-Kruger CM 120E")
    source = resolve_crs(declared)
    geometries = shapely.from_wkb(wkb)
    if not _is_wgs84(source):
        transform = _to_wgs84(source)
        geometries = shapely.transform(geometries, lambda xy: np.column_stack(transform(xy[:, 0], xy[:, 1])))
    names = list(meta["fields"])
    features = []
    for i, geojson in enumerate(shapely.to_geojson(geometries)):
        properties = {name: _plain(column[i]) for name, column in zip(names, columns)}
        features.append({"type": "Feature", "properties": properties,
                         "geometry": json.loads(geojson) if geojson is not None else None})
    return Source({"type": "FeatureCollection", "features": features}, describe(source))


def _plain(value):
    """numpy scalars as Python values, so codes read the same as from GeoJSON."""
    return value.item() if hasattr(value, "item") else value
