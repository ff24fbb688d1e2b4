"""The same land pledged twice: overlapping parcels, found with a spatial index."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

from farmcredit.parcels import usable_geometries


def find_overlaps(geometries: np.ndarray, min_share: float) -> list[list[int]]:
    """Rows each parcel overlaps: by different borrowers (pledged twice) or by the same one
    (counted twice in its total).

    Two parcels overlap when their intersection covers at least ``min_share`` of the smaller
    one. Candidate pairs come from an STR-tree query, so the cost grows with the number of
    touching pairs, not with the square of the portfolio.

    Args:
        geometries: parcel polygons in a projected CRS (None where unusable).
        min_share: overlap share (0-1] of the smaller parcel's area that counts.

    Returns:
        For each parcel, the row indices of the parcels it overlaps.
    """
    geoms = np.asarray(geometries, dtype=object)
    usable = usable_geometries(geoms)
    index = np.flatnonzero(usable)
    partners: list[list[int]] = [[] for _ in geoms]
    if index.size < 2:
        return partners
    tree = shapely.STRtree(geoms[index])
    left, right = tree.query(geoms[index], predicate="intersects")
    keep = left < right
    a, b = index[left[keep]], index[right[keep]]
    shared = shapely.area(shapely.intersection(geoms[a], geoms[b]))
    smaller = np.minimum(shapely.area(geoms[a]), shapely.area(geoms[b]))
    for i, j in zip(a[shared >= min_share * smaller], b[shared >= min_share * smaller]):
        partners[i].append(int(j))
        partners[j].append(int(i))
    return partners


def overlap_ids(parcel_ids: Sequence[object], overlaps: Sequence[Sequence[int]] | None) -> list[list[str]]:
    """Each parcel's overlapping parcels (``find_overlaps``' rows) by id, as text in id order; none without
    ``overlaps``.

    Example:
        >>> overlap_ids(["C", "A", "B;2"], [[2, 1], [0], [0]])
        [['A', 'B;2'], ['C'], ['C']]
    """
    if not overlaps:
        return [[] for _ in parcel_ids]
    ids = [str(pid) for pid in parcel_ids]
    return [sorted(ids[j] for j in rows) for rows in overlaps]
