"""The same land pledged twice: overlapping parcels, found with a spatial index."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from farmcredit.parcels import usable_geometries

# Intersections computed at once (pairs of distinct outlines): memory stays bounded however many pairs touch.
PAIRS_PER_CHUNK = 50_000
# A partner's shared area that counts towards a parcel's cumulative overlap: more than this share of the smaller of
# the two, and wider on average (2 x area / perimeter) than ``find_overlaps``' ``sliver_m``. An outline drawn 1 m off
# along a shared edge covers 1-4.5% of a 0.05-0.2 ha neighbour (the sample's 5th percentile to median), so such a
# sliver alone never refers a neighbour; land taken from other pledges in slices each over it, adding up to
# ``min_share`` of the parcel, is referred.
JITTER_SHARE = 0.05
# Partners a parcel's record lists by id; the rest are counted ("and N more"): a village boundary pasted over
# thousands of parcels would otherwise list thousands of ids in each of their rows (past a spreadsheet cell's
# 32,767 characters), the thousands squared in all.
LISTED_PARTNERS = 20


@dataclass(frozen=True, eq=False)
class Overlaps:
    """Which parcels overlap which (``find_overlaps``), held by outline so that many parcels of one outline (pasted
    over and over) cost their number, not its square.

    Attributes:
        outline: per parcel row, the number of its outline (parcels of the same normalised outline share one: they
            all overlap each other), -1 where the geometry is unusable.
        pairs: (m, 2) outline numbers ``a < b`` of distinct outlines that overlap (every parcel of ``a`` overlaps
            every parcel of ``b``).
    """

    outline: np.ndarray
    pairs: np.ndarray

    @classmethod
    def between(cls, n_parcels: int, pairs: Iterable[tuple[int, int]]) -> Overlaps:
        """``n_parcels`` parcels of distinct outlines, the given pairs of rows overlapping.

        Example:
            >>> Overlaps.between(3, [(0, 2)]).rows(2)
            [0]
        """
        listed = np.array([sorted(pair) for pair in pairs], dtype=np.int64).reshape(-1, 2)
        return cls(np.arange(n_parcels), listed)

    def counts(self) -> np.ndarray:
        """Per parcel row, how many parcels it overlaps."""
        if self._n_outlines() == 0:  # no usable outline at all
            return np.zeros(self.outline.size, dtype=np.int64)
        size = np.bincount(self.outline[self.outline >= 0], minlength=self._n_outlines())
        beside = (np.bincount(self.pairs[:, 0], size[self.pairs[:, 1]], minlength=size.size)
                  + np.bincount(self.pairs[:, 1], size[self.pairs[:, 0]], minlength=size.size)).astype(np.int64)
        return np.where(self.outline >= 0, size[self.outline] - 1 + beside[self.outline], 0)

    def rows(self, row: int) -> list[int]:
        """The rows of the parcels ``row`` overlaps, ascending (all of them: for a check, not a loop over parcels)."""
        own = self.outline[row]
        if own < 0:
            return []
        beside = np.concatenate([self.pairs[self.pairs[:, 0] == own, 1], self.pairs[self.pairs[:, 1] == own, 0], [own]])
        return [int(k) for k in np.flatnonzero(np.isin(self.outline, beside)) if k != row]

    def listed_ids(self, parcel_ids: Sequence[object], limit: int = LISTED_PARTNERS) -> list[list[str]]:
        """Per parcel row, the first ``limit`` ids of the parcels it overlaps, as text in id order (``counts`` says
        how many in all).

        Example:
            >>> Overlaps.between(3, [(0, 1), (0, 2)]).listed_ids(["C", "A", "B;2"])
            [['A', 'B;2'], ['C'], ['C']]
        """
        ids = np.array([str(pid) for pid in parcel_ids], dtype=object)
        listed: list[list[str]] = [[] for _ in ids]
        n_outlines = self._n_outlines()
        if n_outlines == 0:  # no usable outline at all
            return listed
        size = np.bincount(self.outline[self.outline >= 0], minlength=n_outlines)
        involved = size > 1
        involved[self.pairs.ravel()] = True
        rows = np.flatnonzero((self.outline >= 0) & involved[np.maximum(self.outline, 0)])
        if rows.size == 0:
            return listed
        # The involved parcels by outline, then id, then row; each outline's run from start to end.
        rows = rows[np.lexsort((rows, ids[rows].astype(str), self.outline[rows]))]
        start = np.searchsorted(self.outline[rows], np.arange(n_outlines))
        end = np.searchsorted(self.outline[rows], np.arange(n_outlines), side="right")
        # A parcel lists the first ids of its outline's parcels and its neighbours', each's first limit + 1 enough
        # (its own row may be among them): a group of copies costs its size, not its square.
        head = np.minimum(end, start + limit + 1)
        pairs = np.concatenate([self.pairs, self.pairs[:, ::-1]])
        pairs = pairs[np.argsort(pairs[:, 0], kind="stable")]
        beside = np.split(pairs[:, 1], np.searchsorted(pairs[:, 0], np.flatnonzero(involved)[1:]))
        for own, others in zip(np.flatnonzero(involved).tolist(), beside):
            candidates = np.concatenate([rows[start[k]:head[k]] for k in (own, *others.tolist())])
            top = candidates[np.lexsort((candidates, ids[candidates].astype(str)))][: limit + 1]
            for row in rows[start[own]:end[own]].tolist():
                listed[row] = ids[top[top != row][:limit]].tolist()
        return listed

    def _n_outlines(self) -> int:
        return int(max(self.outline.max(initial=-1), self.pairs.max(initial=-1)) + 1)


def find_overlaps(geometries: np.ndarray, min_share: float, sliver_m: float = 0.0) -> Overlaps:
    """Which parcels overlap which: by different borrowers (pledged twice) or by the same one (counted twice in its
    total).

    Two parcels overlap when their intersection covers at least ``min_share`` of the smaller one, or covers more than
    ``JITTER_SHARE`` of it, at least ``sliver_m`` wide on average, where one of the two is covered cumulatively: such
    intersections with all its partners sum to ``min_share`` of its area (a parcel cut from slices of several others'
    land, each too small a share alone; the sum bounds their union from above, over it only where partners overlap each
    other, land pledged twice too). Parcels of the same outline (normalised: ring start and orientation aside) always
    overlap, and are taken as one outline, their intersections never computed. Candidate pairs of distinct outlines come
    from an STR-tree query and are intersected ``PAIRS_PER_CHUNK`` at a time, so time grows with the number of touching
    pairs of distinct outlines (not with the square of the portfolio, nor of a group of copies of one outline), and
    memory with the parcels and those pairs (two integers, a shared area and its perimeter each; never all their
    intersection geometries at once).

    Args:
        geometries: parcel polygons in a projected CRS (None where unusable).
        min_share: overlap share (0-1] of the smaller parcel's area that counts.
        sliver_m: a shared piece narrower on average (2 x area / perimeter, in the CRS's units) is taken for outlines
            drawn a few metres apart along a shared edge, not added to a parcel's cumulative overlap (0: every piece
            over ``JITTER_SHARE`` is).

    Returns:
        The overlaps, by outline (``Overlaps``).
    """
    geoms = np.asarray(geometries, dtype=object)
    index = np.flatnonzero(usable_geometries(geoms))
    outline = np.full(len(geoms), -1, dtype=np.int64)
    if index.size == 0:
        return Overlaps(outline, np.empty((0, 2), dtype=np.int64))
    codes, _ = pd.factorize(shapely.to_wkb(shapely.normalize(geoms[index])))
    first = np.unique(codes, return_index=True)[1]  # each outline's first parcel
    outline[index] = codes
    outlines = geoms[index[first]]
    tree = shapely.STRtree(outlines)
    left, right = tree.query(outlines, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    area = shapely.area(outlines)
    shared, rim = np.empty(left.size), np.empty(left.size)
    for start in range(0, left.size, PAIRS_PER_CHUNK):
        end = start + PAIRS_PER_CHUNK
        pieces = shapely.intersection(outlines[left[start:end]], outlines[right[start:end]])
        shared[start:end], rim[start:end] = shapely.area(pieces), shapely.length(pieces)
    smaller = np.minimum(area[left], area[right])
    counted = np.where((shared > JITTER_SHARE * smaller) & (2 * shared >= sliver_m * rim), shared, 0.0)
    covered = (np.bincount(left, counted, minlength=area.size)
               + np.bincount(right, counted, minlength=area.size)) >= min_share * area
    overlapping = (shared >= min_share * smaller) | ((counted > 0) & (covered[left] | covered[right]))
    return Overlaps(outline, np.column_stack((left[overlapping], right[overlapping])).astype(np.int64))


def partners_text(listed: list[str], count: int) -> str:
    """The ids a parcel overlaps (the first ``LISTED_PARTNERS``), ``;``-joined, and how many more there are.

    Example:
        >>> partners_text(["A", "B"], 5)
        'A;B; and 3 more'
    """
    more = int(count) - len(listed)
    return ";".join(listed) + (f"; and {more} more" if more > 0 else "")
