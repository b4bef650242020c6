"""Map tile rules: no server needed."""
import pytest

from services.grid import tiling
from shared.errors import InvalidArgument

# A city of 20,000 grids about 300 m wide: communities ~1.5 km, streets ~4 km, districts ~15 km.
WIDTHS = {"city": 60_000.0, "district": 15_000.0, "street": 4_000.0, "community": 1_500.0, "grid": 300.0}


def test_tiles_outside_the_pyramid_are_refused():
    tiling.check_tile(0, 0, 0)
    tiling.check_tile(14, 2**14 - 1, 0)
    for z, x, y in ((23, 0, 0), (-1, 0, 0), (3, 8, 0), (3, 0, -1)):
        with pytest.raises(InvalidArgument):
            tiling.check_tile(z, x, y)


def test_the_tile_latitude_is_that_of_its_middle_row():
    assert tiling.tile_latitude(0, 0) == pytest.approx(0.0, abs=1e-9)
    # zoom 10, the row holding latitude 30 N (Hangzhou)
    assert tiling.tile_latitude(10, 422) == pytest.approx(30.0, abs=0.3)


def test_levels_appear_as_their_units_grow_on_screen():
    lat = 30.0
    assert tiling.levels_at(7, lat, WIDTHS, "city") == ["city"]
    assert tiling.levels_at(8, lat, WIDTHS, "city") == ["city", "district"]
    assert tiling.levels_at(10, lat, WIDTHS, "city") == ["city", "district", "street"]
    assert tiling.levels_at(11, lat, WIDTHS, "city") == ["city", "district", "street", "community"]
    assert tiling.levels_at(13, lat, WIDTHS, "city") == ["city", "district", "street", "community"]
    assert tiling.levels_at(14, lat, WIDTHS, "city") == ["city", "district", "street", "community", "grid"]


def test_the_callers_coarsest_level_is_always_drawn():
    assert tiling.levels_at(3, 30.0, WIDTHS, "district") == ["district"]


def test_simplification_follows_the_tile_resolution():
    assert tiling.simplify_tolerance(0) == pytest.approx(360 / 4096)
    assert tiling.simplify_tolerance(12) == pytest.approx(tiling.simplify_tolerance(11) / 2)
