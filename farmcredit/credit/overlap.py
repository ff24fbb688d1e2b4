"""The same land pledged twice: overlapping parcels of different borrowers, via a spatial index."""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely


def find_overlaps(geometries: np.ndarray, borrower_ids: np.ndarray, min_share: float) -> list[list[int]]:
    """Rows each parcel overlaps, for overlaps between different borrowers.

    Two parcels overlap when their intersection covers at least ``min_share`` of the smaller
    one. Candidate pairs come from an STR-tree query, so the cost grows with the number of
    touching pairs, not with the square of the portfolio.

    Args:
        geometries: parcel polygons in a projected CRS (None where unusable).
        borrower_ids: borrower of each parcel (None: the parcel stands alone).
        min_share: overlap share (0-1] of the smaller parcel's area that counts.

    Returns:
        For each parcel, the row indices of the other borrowers' parcels it overlaps.
    """
    geoms = np.asarray(geometries, dtype=object)
    usable = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    index = np.flatnonzero(usable)
    partners: list[list[int]] = [[] for _ in geoms]
    if index.size < 2:
        return partners
    tree = shapely.STRtree(geoms[index])
    left, right = tree.query(geoms[index], predicate="intersects")
    keep = left < right
    a, b = index[left[keep]], index[right[keep]]
    owner = np.array([f"row-{i}" if pd.isna(x) else str(x) for i, x in enumerate(borrower_ids)])
    different = owner[a] != owner[b]
    a, b = a[different], b[different]
    shared = shapely.area(shapely.intersection(geoms[a], geoms[b]))
    smaller = np.minimum(shapely.area(geoms[a]), shapely.area(geoms[b]))
    for i, j in zip(a[shared >= min_share * smaller], b[shared >= min_share * smaller]):
        partners[i].append(int(j))
        partners[j].append(int(i))
    return partners
