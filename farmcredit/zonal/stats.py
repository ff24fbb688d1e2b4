"""Coverage-weighted per-parcel statistics of one raster or a stack of raster layers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from farmcredit.zonal.coverage import Coverage

# Bounds the (layers x cells) work arrays of one batch (about 100 bytes per entry).
_BATCH_ENTRIES = 1 << 15


def zonal_stats(
    coverage: Coverage,
    values: np.ndarray,
    valid: np.ndarray | None = None,
    *,
    cell_area: float,
    percentiles: Sequence[float] = (10, 50, 90),
    weight_power: int = 1,
) -> dict[str, np.ndarray]:
    """Return coverage-weighted statistics of ``values`` for every parcel.

    Every covered cell counts with its coverage fraction f (0-1) as weight, or f ** ``weight_power`` in the
    statistics of the values (mean, std, percentiles; the areas, ``valid_fraction`` and ``count`` stay exact).
    Cells that are masked by ``valid`` or NaN are left out of everything but ``coverage_area``.

    Percentiles follow exactextract's ``quantile``: distinct values x_0 < ... < x_{n-1} of the
    parcel's valid cells, each with weight w_k = sum of the coverage of its cells, W = sum w_k.
    Value k sits at position s_k = k w_k + (n - 1)(w_0 + ... + w_{k-1}); the q-th percentile
    interpolates linearly between the values whose positions bracket q/100 (n - 1) W. With
    equal weights and no value repeated this is ``numpy.percentile``'s default (linear) method
    (a repeated value is one distinct value of summed weight: the median of 1, 1, 2, 3 is 1.8,
    as exactextract gives, where numpy gives 1.5); a single distinct value gives that value.

    Args:
        coverage: cell coverage of the parcels, computed on the grid of ``values``.
        values: (rows, cols) or (layers, rows, cols) raster, e.g. an NDVI series by date.
        valid: bool array of the same shape, False where a value must be ignored (cloud). A masked array's
            mask (rasterio's ``read(masked=True)``: nodata) is left out as well.
        cell_area: area of one cell in the CRS unit squared (m2 for UTM).
        percentiles: percentiles to report (0-100), keys ``p10``, ``p50``, ...
        weight_power: 1 for the mean of the whole polygon, exact; 2 for what grows in it, its mixed edge cells,
            holding mostly the land beside it, counting less (f = 0.5 weighs 0.25).

    Returns:
        Arrays of shape (n_parcels,) for 2-D ``values`` or (n_parcels, layers) for 3-D:
        ``coverage_area`` (CRS unit2, all covered cells), ``valid_area`` (CRS unit2),
        ``valid_fraction`` (valid_area / coverage_area), ``count`` (sum of f over valid cells,
        in cells), ``mean``, ``std`` (weighted population std), ``min``, ``max`` and the
        percentiles. Statistics of values are NaN where a parcel has no valid cell;
        ``valid_fraction`` is NaN where it covers no cell.

    Raises:
        ValueError: if shapes disagree, the coverage reaches outside ``values`` or a
            percentile is outside 0-100, or ``weight_power`` below 1.

    Example:
        >>> import shapely
        >>> from affine import Affine
        >>> from farmcredit.zonal import coverage_fractions
        >>> transform = Affine(10, 0, 0, 0, -10, 10)  # 10 m cells
        >>> cov = coverage_fractions([shapely.box(0, 0, 20, 10)], transform, (1, 2))
        >>> stats = zonal_stats(cov, np.array([[0.2, 0.6]]), cell_area=100.0)
        >>> float(stats["mean"][0]), float(stats["valid_area"][0])
        (0.4, 200.0)
    """
    if np.ma.isMaskedArray(values) and np.ma.getmask(values) is not np.ma.nomask:
        unmasked = ~np.ma.getmaskarray(values)
        valid = unmasked if valid is None else unmasked & np.asarray(valid, dtype=bool)
    stack = np.ma.getdata(values) if np.ma.isMaskedArray(values) else np.asarray(values)
    if stack.ndim not in (2, 3):
        raise ValueError(f"values must be 2-D or 3-D, got shape {stack.shape}")
    n_layers, height, width = stack.shape if stack.ndim == 3 else (1, *stack.shape)
    # One row per layer, cells flat: a view unless values is not contiguous.
    stack = stack.reshape(n_layers, height * width)
    mask = None
    if valid is not None:
        if np.shape(valid) != np.shape(values):
            raise ValueError(f"valid has shape {np.shape(valid)}, values {np.shape(values)}")
        mask = np.asarray(valid, dtype=bool).reshape(n_layers, height * width)
    if len(coverage.row) and (coverage.row.max() >= height or coverage.col.max() >= width):
        raise ValueError(f"coverage reaches outside the {height} x {width} values grid")
    quantiles = np.asarray(percentiles, dtype=np.float64) / 100.0
    if np.any((quantiles < 0) | (quantiles > 1)):
        raise ValueError(f"percentiles must lie within 0-100, got {list(percentiles)}")
    if weight_power < 1:
        raise ValueError(f"weight_power must be at least 1, got {weight_power}")

    n = coverage.n_parcels
    sums = ["coverage_area", "valid_area", "count"]
    names = sums + ["mean", "std", "min", "max"] + [f"p{q:g}" for q in percentiles]
    out = {name: np.full((n, n_layers), 0.0 if name in sums else np.nan) for name in names}

    # Batches of whole parcels, about _BATCH_ENTRIES (cells x layers) each.
    n_cells = len(coverage.parcel)
    parcel_start = np.flatnonzero(np.diff(coverage.parcel, prepend=-1))
    parcel_end = np.r_[parcel_start[1:], n_cells]
    targets = np.r_[0 : n_cells : max(_BATCH_ENTRIES // n_layers, 1), n_cells]
    bounds = np.unique(np.searchsorted(parcel_start, targets))
    for i, j in zip(bounds[:-1], bounds[1:], strict=True):
        a, b = parcel_start[i], parcel_end[j - 1]
        flat = coverage.row[a:b] * width + coverage.col[a:b]
        batch = _batch_stats(
            flat, coverage.fraction[a:b], parcel_start[i:j] - a, stack, mask, quantiles, weight_power
        )
        ids = coverage.parcel[parcel_start[i:j]]
        for name, array in zip(names, batch, strict=True):
            out[name][ids] = array.T

    out["coverage_area"] *= cell_area
    out["valid_area"] *= cell_area
    with np.errstate(invalid="ignore", divide="ignore"):
        out["valid_fraction"] = out["valid_area"] / out["coverage_area"]
    if np.ndim(values) == 2:
        out = {name: array[:, 0] for name, array in out.items()}
    return out


def _batch_stats(
    flat: np.ndarray,
    fraction: np.ndarray,
    starts: np.ndarray,
    stack: np.ndarray,
    mask: np.ndarray | None,
    quantiles: np.ndarray,
    weight_power: int,
) -> list[np.ndarray]:
    """Return (layers, parcels) arrays: coverage sum, valid coverage sum twice (area, count),
    mean, std, min, max, then one per quantile, these weighted by coverage ** ``weight_power``.

    Args:
        flat: flat cell index (row * width + col) of each covered cell, grouped by parcel.
        fraction: coverage fraction of each cell.
        starts: index of each parcel's first cell.
        stack: (layers, cells) values; mask: same shape, False where invalid, or None.
        quantiles: 0-1.
        weight_power: the power of the coverage fraction the statistics of values weigh cells by.
    """
    values = np.take(stack, flat, axis=1)
    ok = ~np.isnan(values) if values.dtype.kind == "f" else np.ones(values.shape, dtype=bool)
    if mask is not None:
        ok &= np.take(mask, flat, axis=1)
    all_ok = bool(ok.all())
    x = values.astype(np.float64) if all_ok else np.where(ok, values, 0.0)
    covered = np.broadcast_to(fraction, x.shape) if all_ok else np.where(ok, fraction, 0.0)
    per_parcel = np.diff(np.r_[starts, len(flat)])

    # Cells are grouped by parcel, so segment sums (reduceat) replace scattered bincounts.
    coverage_sum = np.broadcast_to(np.add.reduceat(fraction, starts), (len(x), len(starts)))
    valid_sum = np.add.reduceat(covered, starts, axis=1)
    weight = covered if weight_power == 1 else covered**weight_power
    weight_sum = valid_sum if weight_power == 1 else np.add.reduceat(weight, starts, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.add.reduceat(weight * x, starts, axis=1) / weight_sum
        # Two passes (mean, then squared deviations) avoid the cancellation of E[x2] - E[x]2.
        deviation = x - np.repeat(mean, per_parcel, axis=1)
        std = np.sqrt(np.add.reduceat(weight * deviation * deviation, starts, axis=1) / weight_sum)
    low = np.minimum.reduceat(np.where(ok, x, np.inf), starts, axis=1)
    high = np.maximum.reduceat(np.where(ok, x, -np.inf), starts, axis=1)
    result = [coverage_sum, valid_sum, valid_sum, mean, std]
    result += [np.where(np.isfinite(a), a, np.nan) for a in (low, high)]
    if len(quantiles):
        result += _weighted_quantiles(values, weight, ok, all_ok, per_parcel, quantiles)
    return result


def _weighted_quantiles(
    values: np.ndarray,
    weight: np.ndarray,
    ok: np.ndarray,
    all_ok: bool,
    per_parcel: np.ndarray,
    quantiles: np.ndarray,
) -> list[np.ndarray]:
    """Return exactextract-style weighted quantiles (see ``zonal_stats``), one (layers,
    parcels) array per quantile, NaN where a parcel has no valid cell.

    ``values``, ``weight`` and ``ok`` are (layers, cells) with cells grouped by parcel.
    """
    n_layers, n_parcels = len(values), len(per_parcel)
    results = [np.full(n_layers * n_parcels, np.nan) for _ in quantiles]
    # One group per (layer, parcel), in the entries' own (layer-major) order.
    group = np.repeat(np.arange(n_layers * n_parcels), np.tile(per_parcel, n_layers))
    x, weight = values.ravel(), np.ascontiguousarray(weight).ravel()
    if not all_ok:
        keep = ok.ravel()
        group, x, weight = group[keep], x[keep], weight[keep]
    if len(x) == 0:
        return [r.reshape(n_layers, n_parcels) for r in results]
    x, group, weight, distinct = _sort_within_groups(x, group, weight)

    # Distinct values per group, with their coverage summed (continuous data rarely ties).
    run_start = np.flatnonzero(distinct)
    ties = len(run_start) < len(x)
    run_weight = np.add.reduceat(weight, run_start) if ties else weight
    run_x = (x[run_start] if ties else x).astype(np.float64)
    run_group = group[run_start] if ties else group
    group_start = np.flatnonzero(np.r_[True, run_group[1:] != run_group[:-1]])
    n_runs = np.diff(np.r_[group_start, len(run_group)])

    # Position s_k = k w_k + (n - 1) (w_0 + ... + w_{k-1}) of each distinct value, divided by
    # its group's (n - 1) W so that quantile q sits at q; adding the group's rank makes the
    # positions of all groups one ascending array to search.
    first = np.repeat(group_start, n_runs)
    before = np.cumsum(run_weight) - run_weight
    before -= before[first]
    s = (np.arange(len(run_group)) - first) * run_weight + np.repeat(n_runs - 1, n_runs) * before
    scale = (n_runs - 1) * np.add.reduceat(run_weight, group_start)
    s = s / np.repeat(np.where(scale > 0, scale, 1.0), n_runs) + np.repeat(
        np.arange(len(group_start), dtype=np.float64), n_runs
    )

    present = run_group[group_start]
    group_end = np.r_[group_start[1:], len(run_group)] - 1
    for result, q in zip(results, quantiles, strict=True):
        target = np.arange(len(group_start)) + q
        left = np.clip(np.searchsorted(s, target, side="right") - 1, group_start, group_end)
        right = np.minimum(left + 1, group_end)
        span = np.where(right > left, s[right] - s[left], 1.0)
        step = np.clip((target - s[left]) / span, 0.0, 1.0)
        result[present] = run_x[left] + step * (run_x[right] - run_x[left])
    return [r.reshape(n_layers, n_parcels) for r in results]


def _sort_within_groups(
    x: np.ndarray, group: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sort entries by (group, x), ``group`` being sorted already.

    Returns:
        (x, group, weight, distinct): sorted, and True where (group, x) differs from the
        previous entry.
    """
    x = x + x.dtype.type(0)  # -0.0 becomes 0.0, the same distinct value
    group_start = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sizes = np.diff(np.r_[group_start, len(x)])
    local = np.arange(len(x)) - np.repeat(group_start, sizes)
    local_bits = int(sizes.max() - 1).bit_length()
    group_bits = (len(group_start) - 1).bit_length()
    if x.dtype == np.float32 and group_bits + 32 + local_bits <= 63:
        # Pack (group rank, float32 bits mapped to their order, index in group) in one int64
        # and sort the keys themselves: several times faster than an argsort.
        rank = np.repeat(np.arange(len(group_start), dtype=np.int64), sizes)
        bits = x.view(np.int32)
        ordered = (bits ^ ((bits >> 31) & 0x7FFFFFFF)).astype(np.int64) + 2**31
        key = np.sort((rank << (32 + local_bits)) | (ordered << local_bits) | local)
        entry = group_start[key >> (32 + local_bits)] + (key & ((1 << local_bits) - 1))
        value_key = key >> local_bits
        distinct = np.r_[True, value_key[1:] != value_key[:-1]]
    else:
        entry = np.lexsort((x, group))
        sorted_x, sorted_group = x[entry], group[entry]
        distinct = np.r_[
            True, (sorted_group[1:] != sorted_group[:-1]) | (sorted_x[1:] != sorted_x[:-1])
        ]
    return x[entry], group[entry], weight[entry], distinct
