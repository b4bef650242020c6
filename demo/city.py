"""A synthetic city as a GeoJSON FeatureCollection: a rectangle cut into districts, streets,
communities and grids, each level tiling its parent exactly (shared borders, no gaps)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CityPlan:
    city_code: str = "330100"
    name: str = "Demo City"
    west: float = 120.0
    south: float = 30.0
    east: float = 120.4
    north: float = 30.3
    districts: int = 2
    streets: int = 2
    communities: int = 2
    grids_x: int = 2
    grids_y: int = 2

    @property
    def grid_count(self) -> int:
        return self.districts * self.streets * self.communities * self.grids_x * self.grids_y


def _cuts(lo: float, hi: float, n: int) -> list[float]:
    # The last cut is `hi` itself, so children end exactly on their parent's border.
    return [lo + (hi - lo) * i / n for i in range(n)] + [hi]


def _feature(code: str, name: str, w: float, s: float, e: float, n: float) -> dict:
    ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
    return {"type": "Feature", "properties": {"code": code, "name": name},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


def build(plan: CityPlan = CityPlan()) -> dict:
    prefix = plan.city_code[:4]
    features = [_feature(plan.city_code, plan.name, plan.west, plan.south, plan.east, plan.north)]
    xs = _cuts(plan.west, plan.east, plan.districts)
    for d in range(plan.districts):
        dcode = f"{prefix}{d + 2:02d}"  # county-level codes 01 is usually the city proper
        features.append(_feature(dcode, f"District {d + 1}", xs[d], plan.south, xs[d + 1], plan.north))
        ys = _cuts(plan.south, plan.north, plan.streets)
        for s in range(plan.streets):
            scode = f"{dcode}{s + 1:03d}"
            features.append(_feature(scode, f"Street {d + 1}.{s + 1}", xs[d], ys[s], xs[d + 1], ys[s + 1]))
            cx = _cuts(xs[d], xs[d + 1], plan.communities)
            for c in range(plan.communities):
                ccode = f"{scode}{c + 1:03d}"
                features.append(_feature(ccode, f"Community {d + 1}.{s + 1}.{c + 1}",
                                         cx[c], ys[s], cx[c + 1], ys[s + 1]))
                gx, gy = _cuts(cx[c], cx[c + 1], plan.grids_x), _cuts(ys[s], ys[s + 1], plan.grids_y)
                for i in range(plan.grids_x):
                    for j in range(plan.grids_y):
                        n = i * plan.grids_y + j + 1
                        features.append(_feature(f"{ccode}{n:03d}", f"Grid {ccode[-6:]}-{n}",
                                                 gx[i], gy[j], gx[i + 1], gy[j + 1]))
    return {"type": "FeatureCollection", "features": features}


def grid_cells(plan: CityPlan = CityPlan()) -> list[tuple[str, float, float, float, float]]:
    """(code, west, south, east, north) of every leaf grid."""
    return [(f["properties"]["code"], *_bbox(f)) for f in build(plan)["features"]
            if len(f["properties"]["code"]) == 15]


def _bbox(feature) -> tuple[float, float, float, float]:
    ring = feature["geometry"]["coordinates"][0]
    return ring[0][0], ring[0][1], ring[2][0], ring[2][1]
