"""Test cities whose grids are not rectangles: borders at every angle, shared exactly by neighbours."""
from __future__ import annotations

import random

from demo.city import CityPlan, build


def _lattice(w: float, s: float, e: float, n: float, nx: int, ny: int, rng: random.Random, jitter: float):
    """(nx+1) x (ny+1) vertices over a rectangle; inner ones moved at random by up to `jitter` of a
    cell, border ones only along their border, corners fixed, so the cells tile the rectangle."""
    dx, dy = (e - w) / nx, (n - s) / ny
    points = []
    for i in range(nx + 1):
        column = []
        for j in range(ny + 1):
            x = e if i == nx else w + i * dx
            y = n if j == ny else s + j * dy
            if 0 < i < nx:
                x += rng.uniform(-jitter, jitter) * dx
            if 0 < j < ny:
                y += rng.uniform(-jitter, jitter) * dy
            column.append([x, y])
        points.append(column)
    return points


def jittered(plan: CityPlan, seed: int, jitter: float = 0.35) -> dict:
    """demo.city.build(plan), but each community's grids are the quadrilaterals of a jittered
    lattice: the same codes, the same parents, other shapes for every seed."""
    rng = random.Random(seed)
    doc = build(plan)
    features = []
    for feature in doc["features"]:
        code = feature["properties"]["code"]
        if len(code) == 15:
            continue
        features.append(feature)
        if len(code) != 12:
            continue
        ring = feature["geometry"]["coordinates"][0]
        (w, s), (e, n) = ring[0], ring[2]
        v = _lattice(w, s, e, n, plan.grids_x, plan.grids_y, rng, jitter)
        for i in range(plan.grids_x):
            for j in range(plan.grids_y):
                quad = [v[i][j], v[i + 1][j], v[i + 1][j + 1], v[i][j + 1], v[i][j]]
                number = i * plan.grids_y + j + 1  # demo.city's numbering
                features.append({"type": "Feature",
                                 "properties": {"code": f"{code}{number:03d}", "name": f"Grid {code[-6:]}-{number}"},
                                 "geometry": {"type": "Polygon", "coordinates": [quad]}})
    return {"type": "FeatureCollection", "features": features}


def leaf_polygons(doc: dict) -> dict[str, list[list[float]]]:
    """code -> exterior ring of every leaf grid in a city document."""
    return {f["properties"]["code"]: f["geometry"]["coordinates"][0] for f in doc["features"]
            if len(f["properties"]["code"]) == 15}
