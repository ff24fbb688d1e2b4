"""The pledged parcels and their truth: exact areas, declarations, broken outlines, RFC 7946."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import shape

from farmcredit.simulate import SimulationResult, SimulationSpec, simulate_season

SPEC = SimulationSpec(size_px=96, n_dates=3, portfolio_fraction=0.5)


@pytest.fixture(scope="module")
def season(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    return simulate_season(tmp_path_factory.mktemp("portfolio"), seed=7, spec=SPEC)


@pytest.fixture(scope="module")
def truth(season: SimulationResult) -> pd.DataFrame:
    return pd.read_csv(season.truth_path)


@pytest.fixture(scope="module")
def parcels(season: SimulationResult, truth: pd.DataFrame) -> gpd.GeoDataFrame:
    frame = gpd.read_file(season.parcels_path)
    return frame.to_crs(season.crs).merge(truth, on=["parcel_id", "borrower_id"], validate="one_to_one")


def test_geojson_is_rfc7946_wgs84(season: SimulationResult) -> None:
    collection = json.loads(season.parcels_path.read_text())
    assert collection["type"] == "FeatureCollection" and "crs" not in collection
    assert len(collection["features"]) == season.n_parcels
    for feature in collection["features"]:
        assert set(feature["properties"]) == {"parcel_id", "borrower_id", "declared_crop", "declared_area_ha"}
        ring = np.array(feature["geometry"]["coordinates"][0])
        assert np.all((113.9 < ring[:, 0]) & (ring[:, 0] < 114.1) & (32.9 < ring[:, 1]) & (ring[:, 1] < 33.1))
        polygon = shape(feature["geometry"])
        if polygon.is_valid:
            assert polygon.exterior.is_ccw


def test_ids_and_borrowers(parcels: gpd.GeoDataFrame) -> None:
    assert parcels.parcel_id.str.fullmatch(r"P\d{5}").all() and parcels.parcel_id.is_unique
    assert parcels.borrower_id.str.fullmatch(r"B\d{4}").all()
    assert parcels.groupby("borrower_id").size().between(1, 5).all()
    assert set(parcels.declared_crop) <= {"rice", "wheat", "maize", "soybean"}
    assert set(parcels.true_crop) <= {"rice", "wheat", "maize", "soybean", "fallow"}


def test_smallholder_sizes(parcels: gpd.GeoDataFrame) -> None:
    area = parcels.polygon_area_ha
    assert area.between(0.05, 3.0).all()
    assert (area < 0.7).mean() > 0.75


def test_truth_area_is_the_written_polygon_for_fully_cultivated_parcels(parcels: gpd.GeoDataFrame) -> None:
    valid = parcels[parcels.is_valid]
    assert np.allclose(valid.area / 1e4, valid.polygon_area_ha, atol=1e-6)
    full = parcels[(parcels.true_crop != "fallow") & ~parcels.partly_cultivated]
    assert (full.true_cultivated_area_ha == full.polygon_area_ha).all()
    assert (parcels.loc[parcels.true_crop == "fallow", "true_cultivated_area_ha"] == 0).all()
    partly = parcels[parcels.partly_cultivated]
    assert len(partly) > 0
    assert (
        (partly.true_cultivated_area_ha > 0) & (partly.true_cultivated_area_ha < 0.85 * partly.polygon_area_ha)
    ).all()


def test_declarations(parcels: gpd.GeoDataFrame) -> None:
    cropped = parcels[parcels.true_crop != "fallow"]
    honest = cropped[~cropped.over_declared]
    ratio = honest.declared_area_ha / honest.true_cultivated_area_ha
    # U(0.95, 1.05) then rounded to 0.01 ha: small parcels move most.
    assert (
        np.abs(honest.declared_area_ha - honest.true_cultivated_area_ha)
        <= 0.05 * honest.true_cultivated_area_ha + 0.005
    ).all()
    assert ratio.between(0.8, 1.2).all()
    over = cropped[cropped.over_declared]
    assert len(over) >= 1
    assert (over.declared_area_ha / over.true_cultivated_area_ha).between(1.5, 3.1).all()
    assert (parcels.crop_mismatch == (parcels.declared_crop != parcels.true_crop)).all()
    assert cropped.crop_mismatch.sum() >= 1
    assert cropped.health_factor.between(0.6, 1.0).all()
    assert parcels.loc[parcels.true_crop == "fallow", "health_factor"].isna().all()


def test_broken_geometries_are_invalid_and_repairable(parcels: gpd.GeoDataFrame) -> None:
    broken = parcels[parcels.broken_geometry]
    assert len(broken) == SPEC.n_broken_geometries
    assert (~parcels.is_valid == parcels.broken_geometry).all()
    for geometry, intended_ha in zip(broken.geometry, broken.polygon_area_ha):
        assert "Self-intersection" in shapely.is_valid_reason(geometry)
        repaired = shapely.make_valid(geometry)
        assert repaired.geom_type in ("Polygon", "MultiPolygon")
        assert repaired.area / 1e4 == pytest.approx(intended_ha, rel=0.02)


def test_parcels_do_not_overlap(season: SimulationResult) -> None:
    geometries = shapely.make_valid(gpd.read_file(season.parcels_path).to_crs(season.crs).geometry.values)
    tree = shapely.STRtree(geometries)
    left, right = tree.query(geometries, predicate="intersects")
    pairs = left < right
    shared = shapely.area(shapely.intersection(geometries[left[pairs]], geometries[right[pairs]]))
    assert shared.max(initial=0.0) < 1e-6
