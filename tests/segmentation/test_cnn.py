"""The cropland CNN: variable dates, masking, tiling, weights files, training, evaluation."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from farmcredit.errors import InputError
from farmcredit.segmentation.card import (
    ARCHITECTURE,
    CLASSES,
    INDICES,
    MODEL_BANDS,
    ModelCard,
    card_path,
    uncalibrated,
)
from farmcredit.segmentation.cnn import (
    CnnCroplandModel,
    batch_plan,
    chip_grid,
    fill_window,
    normalise_season,
)
from farmcredit.segmentation.network import RECEPTIVE_RADIUS_PX, CroplandNet
from farmcredit.segmentation.training import (
    SETTINGS_ADDED,
    TrainingConfig,
    TrainingData,
    save_model,
    train,
)
from farmcredit.simulate.spectra import as_land


@pytest.fixture(scope="module")
def model() -> CnnCroplandModel:
    torch.manual_seed(0)
    card = ModelCard(name="test", bands=MODEL_BANDS, band_mean=(0.1,) * 10, band_std=(0.1,) * 10, width=8,
                     code_version="0.1.0")
    return CnnCroplandModel(CroplandNet(10 + len(INDICES), len(CLASSES), 8), card, device="cpu", chip_px=96)


def season(steps: int, rows: int = 70, cols: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return land(rng.random((steps, 10, rows, cols), dtype=np.float32) * 0.4), rng.random((steps, rows, cols)) > 0.3


def land(reflectance: np.ndarray) -> np.ndarray:
    """Random reflectance (time, band, ...) made to read as land (``as_land``)."""
    as_land(*(reflectance[:, MODEL_BANDS.index(b)] for b in ("B02", "B03", "B04", "B08", "B11")))
    return reflectance


@pytest.mark.parametrize("steps", [1, 2, 7])
def test_any_number_of_dates_gives_one_probability_per_pixel(model, steps) -> None:
    reflectance, clear = season(steps)
    probability = model.predict(reflectance, clear, MODEL_BANDS).crop_probability
    assert probability.shape == (70, 90) and probability.dtype == np.float32
    seen = clear.any(axis=0)
    assert np.all((probability[seen] >= 0) & (probability[seen] <= 1))


def test_four_band_single_date_in_any_order_works(model) -> None:
    reflectance, clear = season(1)
    order = ("B08", "B02", "B04", "B03")
    picked = reflectance[:, [MODEL_BANDS.index(b) for b in order]]
    assert np.isfinite(model.predict(picked, clear, order).crop_probability[clear[0]]).all()


def test_a_fully_masked_date_changes_nothing(model) -> None:
    reflectance, clear = season(3)
    base = model.predict(reflectance, clear, MODEL_BANDS).crop_probability
    extra = np.concatenate([reflectance, np.full_like(reflectance[:1], 0.9)])
    extra_clear = np.concatenate([clear, np.zeros_like(clear[:1])])
    np.testing.assert_array_equal(model.predict(extra, extra_clear, MODEL_BANDS).crop_probability, base)


def test_pixels_without_a_clear_date_or_with_nan_are_nan(model) -> None:
    reflectance, clear = season(2)
    clear[:, :5, :5] = False
    reflectance[:, 3, 10:12, 10:12] = np.nan
    clear[:, 10:12, 10:12] = True
    probability = model.predict(reflectance, clear, MODEL_BANDS).crop_probability
    assert np.isnan(probability[:5, :5]).all() and np.isnan(probability[10:12, 10:12]).all()
    assert np.isnan(model.predict(reflectance, np.zeros_like(clear), MODEL_BANDS).crop_probability).all()


def test_a_band_with_no_value_anywhere_counts_as_absent_not_as_a_mask(model) -> None:
    reflectance, clear = season(2)
    b8a = MODEL_BANDS.index("B8A")
    reflectance[:, b8a] = np.nan  # e.g. a product or label set without B8A
    without = tuple(b for b in MODEL_BANDS if b != "B8A")
    expected = model.predict(np.delete(reflectance, b8a, axis=1), clear, without).crop_probability
    got = model.predict(reflectance, clear, MODEL_BANDS).crop_probability
    assert np.isfinite(got[clear.any(axis=0)]).all()
    np.testing.assert_array_equal(got, expected)


def test_pixels_without_a_clear_date_are_seen_past_as_a_raster_edge_not_a_hole(model) -> None:
    reflectance, _ = season(2)
    clear = np.ones((2, 70, 90), dtype=bool)
    clear[:, :, 50:] = False  # persistent cloud or no data over the right of the raster
    reflectance[:, 3, :, 60:] = np.nan
    edge = reflectance.copy()
    edge[..., 50:] = edge[..., 49:50]  # what the network sees past a raster edge: the edge repeated
    got = model.predict(reflectance, clear, MODEL_BANDS).crop_probability
    expected = model.predict(edge, np.ones_like(clear), MODEL_BANDS).crop_probability
    assert np.isnan(got[:, 50:]).all()
    np.testing.assert_array_equal(got[:, :50], expected[:, :50])


def test_a_chip_is_filled_as_the_whole_raster_wherever_a_seen_pixel_of_its_core_looks() -> None:
    from scipy import ndimage

    rows, cols = 230, 170
    source = np.arange(rows * cols, dtype=np.float64).reshape(1, 1, rows, cols)  # each pixel's own id
    for seed in range(3):
        rng = np.random.default_rng(seed)
        seen = ~ndimage.binary_dilation(rng.random((rows, cols)) < 0.003, iterations=3 + 4 * seed)  # ragged clouds
        whole = fill_window(source, seen[None], seen, (0, rows, 0, cols))[0][0, 0]
        assert np.isin(whole, source[0, 0][seen]).all()
        for chip in (68, 96, 150):
            for (r0, r1, c0, c1), (k0, k1, j0, j1) in chip_grid(rows, cols, chip):
                core = np.zeros_like(seen)
                core[k0:k1, j0:j1] = seen[k0:k1, j0:j1]
                looked_at = ndimage.binary_dilation(core, np.ones((3, 3), bool), RECEPTIVE_RADIUS_PX)[r0:r1, c0:c1]
                filled = fill_window(source, seen[None], seen, (r0, r1, c0, c1))[0][0, 0]
                np.testing.assert_array_equal(filled[looked_at], whole[r0:r1, c0:c1][looked_at])


def test_tiled_inference_equals_one_pass_whatever_the_chip_size(model) -> None:
    reflectance, clear = season(2, rows=230, cols=170)
    clear[:, 40:110, 30:75] = False  # a persistent cloud over chip edges: filled from beyond them
    clear[:, 150:, 120:] = False
    whole = CnnCroplandModel(model.net, model.card, "cpu", chip_px=512).predict(reflectance, clear, MODEL_BANDS)
    for chip in (68, 96, 150):
        tiled = CnnCroplandModel(model.net, model.card, "cpu", chip_px=chip).predict(reflectance, clear, MODEL_BANDS)
        np.testing.assert_allclose(tiled.crop_probability, whole.crop_probability, atol=1e-5)


def test_chips_inside_the_raster_are_batched_apart_from_those_at_its_edge() -> None:
    rows, cols = 230, 170
    plan = batch_plan(rows, cols, 96, 4)
    assert sorted(chip for members, _ in plan for chip in members) == sorted(chip_grid(rows, cols, 96))
    for members, interior in plan:
        assert 1 <= len(members) <= 4 and len({(r1 - r0, c1 - c0) for (r0, r1, c0, c1), _ in members}) == 1
        assert all((r0 > 0 and c0 > 0 and r1 < rows and c1 < cols) == interior for (r0, r1, c0, c1), _ in members)
    # Cores of 40 px, margins of 28: the cores in rows 40-199 and cols 40-119 read no edge, 8 chips in 2 batches.
    assert [len(members) for members, interior in plan if interior] == [4, 4]


def test_zero_padding_inside_the_raster_changes_only_outputs_no_kept_pixel_is_and_flags_fold_exactly(model) -> None:
    reflectance, clear = season(2, rows=70, cols=80)
    [batch] = model.chip_batches(reflectance, clear, MODEL_BANDS)
    x, narrowed, flags = model.network_inputs(batch.reflectance, batch.clear, batch.available)
    edge, inside = (model.logits(x, narrowed, flags, interior).numpy() for interior in (False, True))
    r = RECEPTIVE_RADIUS_PX
    np.testing.assert_allclose(inside[..., r:-r, r:-r], edge[..., r:-r, r:-r], atol=1e-5)
    assert not np.allclose(inside[..., :2, :], edge[..., :2, :], atol=1e-3)
    some = flags.clone()
    some[1:4] = 0.0  # bands unavailable (zero, as normalised): their flags fold into the first layer's bias
    x = x * some[:, None, None]
    date = x[:, 0]
    with torch.no_grad():  # what the folding stands for: the encoder over each band beside its flag
        beside = torch.cat([date, some[None, :, None, None].expand_as(date)], dim=1)
        reference = model.net.date_encoder(beside)
        for given in (some, some.expand(len(x), -1)):
            np.testing.assert_allclose(model.net._date_encoding(given)(date), reference, atol=1e-5)
    shared = model.logits(x, narrowed, some).numpy()
    np.testing.assert_allclose(model.logits(x, narrowed, some.expand(len(x), -1)).numpy(), shared, atol=1e-5)
    assert not np.allclose(shared, model.logits(x, narrowed, flags).numpy(), atol=1e-3)


def test_wrong_band_count_or_missing_nir_is_refused(model) -> None:
    reflectance, clear = season(1)
    with pytest.raises(InputError, match="expected"):
        model.predict(reflectance[:, :4], clear, MODEL_BANDS)
    with pytest.raises(InputError, match="B08"):
        model.predict(reflectance[:, :3], clear, ("B02", "B03", "B04"))


@pytest.mark.parametrize("steps, rows, cols", [(0, 70, 90), (2, 0, 90), (2, 70, 0)])
def test_no_date_or_no_pixel_is_refused_saying_so(model, steps, rows, cols) -> None:
    reflectance, clear = season(steps, rows, cols)
    with pytest.raises(InputError, match=r"nothing to classify; give at least one date of at least one pixel"):
        model.predict(reflectance, clear, MODEL_BANDS)
    with pytest.raises(InputError, match="nothing to classify"):
        model.predict_patches(reflectance[None], clear[None], MODEL_BANDS)


def test_a_band_named_twice_is_refused(model) -> None:
    reflectance, clear = season(1)
    with pytest.raises(InputError, match=r"name \['B04'\] more than once"):
        model.predict(reflectance[:, :4], clear, ("B04", "B08", "B04", "B03"))


def test_digital_numbers_or_percent_are_refused_but_bright_or_saturated_reflectance_is_not(model) -> None:
    reflectance, clear = season(2)
    for wrong in (reflectance * 10_000, (reflectance * 10_000).astype(np.uint16), reflectance * 100):
        with pytest.raises(InputError, match="divided by 10000"):
            model.predict(wrong, clear, MODEL_BANDS)
    with pytest.raises(InputError, match="divided by 10000"):
        model.predict_patches(reflectance[None] * 10_000, clear[None], MODEL_BANDS)
    one_band, one_date = reflectance.copy(), reflectance.copy()
    one_band[:, MODEL_BANDS.index("B11")] *= 10_000  # a tenth of the values: not fill, a band on another scale
    one_date[1] *= 10_000
    for wrong, said in ((one_band, r"most values of 2 band-date\(s\) \(B11\)"), (one_date, "of 10 band-date")):
        with pytest.raises(InputError, match=said):
            model.predict(wrong, clear, MODEL_BANDS)
    bright = reflectance.copy()
    bright[:, :, :60] += 1.6  # cloud or snow over most of the raster: 1.6-2.0
    bright[0, :, :3, :3] = 65_535 / 10_000  # saturated
    assert np.isfinite(model.predict(bright, clear, MODEL_BANDS).crop_probability[clear.any(axis=0)]).all()


def test_a_fill_value_is_no_data_and_moves_no_other_pixel(model) -> None:
    """One -9999 (or -1, 65535, inf) in one band of one date, given as clear: as if that pixel-date were not clear,
    where the network's context used to spread it over some 30 pixels around; a few are no reason to refuse."""
    reflectance, clear = season(2)
    row, col = np.argwhere(clear.all(axis=0))[len(np.argwhere(clear.all(axis=0))) // 2]
    unseen = clear.copy()
    unseen[0, row, col] = False
    expected = model.predict(reflectance, unseen, MODEL_BANDS).crop_probability
    assert not np.array_equal(expected, model.predict(reflectance, clear, MODEL_BANDS).crop_probability)
    for fill in (-9999.0, -1.0, 65535.0, np.inf):
        filled = reflectance.copy()
        filled[0, MODEL_BANDS.index("B04"), row, col] = fill
        np.testing.assert_array_equal(model.predict(filled, clear, MODEL_BANDS).crop_probability, expected)
    # Filled on every date: no data, as NaN is (filled in from its neighbours, NaN and no class in the output).
    blank, filled = reflectance.copy(), reflectance.copy()
    blank[:, MODEL_BANDS.index("B04"), row, col] = np.nan
    filled[:, MODEL_BANDS.index("B04"), row, col] = -9999.0
    unseen, given = model.predict(blank, clear, MODEL_BANDS), model.predict(filled, clear, MODEL_BANDS)
    assert np.isnan(given.crop_probability[row, col]) and given.crop_class[row, col] == -1
    np.testing.assert_array_equal(given.crop_probability, unseen.crop_probability)


def test_normalisation_is_float32_arithmetic_as_numpy_rounds_it_zero_where_unusable() -> None:
    rng = np.random.default_rng(5)
    reflectance = rng.random((2, 3, 10, 20, 30), dtype=np.float32) * 0.5
    reflectance[rng.random(reflectance.shape) < 0.05] = np.nan
    reflectance[0, 0, MODEL_BANDS.index("B11"), :2] = 0.0  # a zero sum: NDMI-like index 0/0
    reflectance[0, 0, MODEL_BANDS.index("B12"), :2] = 0.0
    clear = rng.random((2, 3, 20, 30)) > 0.3
    available = np.ones(10, dtype=np.float32)
    available[MODEL_BANDS.index("B05")] = 0.0
    mean, std = (rng.random(10).astype(np.float32) * 0.2 + 0.05 for _ in range(2))
    x, narrowed, flags = normalise_season(torch.from_numpy(reflectance), torch.from_numpy(clear), available, mean,
                                          std, MODEL_BANDS)
    x, narrowed = x.numpy(), narrowed.numpy()
    used = np.isfinite(reflectance[:, :, available > 0]).all(axis=2)
    np.testing.assert_array_equal(narrowed, clear & used)
    for i in range(len(MODEL_BANDS)):
        expected = np.where(narrowed, (reflectance[:, :, i] - mean[i]) / std[i], 0) if available[i] else 0
        np.testing.assert_array_equal(x[:, :, i], expected)
    for k, (a, b) in enumerate(INDICES):
        high, low = (reflectance[:, :, MODEL_BANDS.index(name)] for name in (a, b))
        with np.errstate(invalid="ignore", divide="ignore"):
            index = (high - low) / (high + low)
        expected = np.clip(np.where(narrowed & np.isfinite(index), index, 0), -1, 1) if "B05" not in (a, b) else 0
        np.testing.assert_array_equal(x[:, :, 10 + k], expected)
    np.testing.assert_array_equal(flags.numpy(), [*available, *(float("B05" not in pair) for pair in INDICES)])
    as_bytes = normalise_season(torch.from_numpy(reflectance), torch.from_numpy(clear.astype(np.uint8)), available,
                                mean, std, MODEL_BANDS)  # a 0/1 mask, as a label file may give one
    np.testing.assert_array_equal(as_bytes[0].numpy(), x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_normalisation_on_the_gpu_is_bitwise_the_cpus() -> None:
    rng = np.random.default_rng(6)
    reflectance = rng.random((2, 4, 10, 64, 64), dtype=np.float32) * 0.5
    reflectance[rng.random(reflectance.shape) < 0.05] = np.nan
    clear = torch.from_numpy(rng.random((2, 4, 64, 64)) > 0.3)
    available, mean, std = np.ones(10, dtype=np.float32), np.full(10, 0.13, np.float32), np.full(10, 0.07, np.float32)
    on_cpu = normalise_season(torch.from_numpy(reflectance), clear, available, mean, std, MODEL_BANDS)
    on_gpu = normalise_season(torch.from_numpy(reflectance).cuda(), clear.cuda(), available, mean, std, MODEL_BANDS)
    for cpu, gpu in zip(on_cpu, on_gpu):
        assert torch.equal(cpu, gpu.cpu())


def test_values_under_cloud_neither_refuse_a_season_nor_make_a_band_available(model) -> None:
    reflectance, clear = season(2)
    clear[:, :, :60] = False  # two thirds of the raster clouded on both dates
    reflectance[:, MODEL_BANDS.index("B05")] = np.nan
    cloud = np.broadcast_to(~clear[:, None], reflectance.shape)
    expected = model.predict(reflectance, clear, MODEL_BANDS).crop_probability
    saturated = np.where(cloud, np.float32(6.5535), reflectance)  # would read as digital numbers if counted
    swapped_looking = reflectance.copy()
    for band, value in (("B03", 0.05), ("B04", 0.3), ("B08", 0.05)):  # would read as red and NIR swapped
        swapped_looking[:, MODEL_BANDS.index(band)][~clear] = value
    b05_under_cloud = reflectance.copy()  # B05 only where cloudy: absent, as without it
    b05_under_cloud[:, MODEL_BANDS.index("B05")] = np.where(~clear, np.float32(0.2), np.nan)
    for changed in (saturated, swapped_looking, b05_under_cloud):
        np.testing.assert_array_equal(model.predict(changed, clear, MODEL_BANDS).crop_probability, expected)


def mixed_season(spectra: np.ndarray, bands: tuple[str, ...], share: tuple[float, ...]) -> np.ndarray:
    """Two dates of 50 x 50 pixels, each pixel one of the kinds ``spectra`` (kind, band) drawn at ``share``
    (seeded); bands not in ``bands`` absent (NaN)."""
    kind = np.random.default_rng(0).choice(len(spectra), size=(2, 50, 50), p=share)
    reflectance = np.full((2, 10, 50, 50), np.nan, dtype=np.float32)
    for i, band in enumerate(bands):
        reflectance[:, MODEL_BANDS.index(band)] = spectra[kind, i]
    return reflectance


def test_red_and_nir_swapped_are_refused_but_bright_water_and_bare_soil_are_not(model) -> None:
    # Per pixel kind (green, red, NIR): vegetation; bare soil; FTW Austria's turbid Inn; bright turbid water
    # (NIR 0.4 x red); shallow brine on salt (NIR under a third of red, but red near green); clear water.
    spectra = np.array([(0.08, 0.04, 0.35), (0.15, 0.22, 0.28), (0.17, 0.16, 0.075), (0.2, 0.25, 0.1),
                        (0.3, 0.35, 0.05), (0.05, 0.03, 0.01)], dtype=np.float32)

    def season(share: tuple[float, ...]) -> np.ndarray:
        return mixed_season(spectra, ("B03", "B04", "B08"), share)

    clear = np.ones((2, 50, 50), dtype=bool)
    swapped = tuple({"B04": "B08", "B08": "B04"}.get(b, b) for b in MODEL_BANDS)
    as_named = season((0.3, 0.2, 0.1, 0.2, 0.1, 0.1))  # every kind present: read as named, nothing is odd
    assert np.isfinite(model.predict(as_named, clear, MODEL_BANDS).crop_probability).all()
    with pytest.raises(InputError, match=r"bands look mislabelled: on 3\d% of clear pixels B04 \(red\) is bright"):
        model.predict(as_named, clear, swapped)
    model.predict(season((0.0, 0.0, 0.3, 0.4, 0.3, 0.0)), clear, MODEL_BANDS)  # a season of water and salt alone
    sparse = season((0.13, 0.87, 0.0, 0.0, 0.0, 0.0))  # a few fields on bare soil, read swapped: just over 10%
    with pytest.raises(InputError, match="bands look mislabelled"):
        model.predict(sparse, clear, swapped)
    # Without green, red and NIR decide: brine would read as swapped, a season without it does not.
    no_green = [i for i, band in enumerate(MODEL_BANDS) if band != "B03"]
    without_brine = season((0.3, 0.2, 0.1, 0.3, 0.0, 0.1))[:, no_green]
    model.predict(without_brine, clear, [MODEL_BANDS[i] for i in no_green])
    with pytest.raises(InputError, match="bands look mislabelled"):
        model.predict(without_brine, clear, [swapped[i] for i in no_green])


def test_red_and_blue_swapped_are_refused_where_bare_soil_shows_it_but_blue_roofs_beside_soil_are_not(model) -> None:
    # Per pixel kind (blue, green, red, NIR): vegetation; bare soil; clear water; a blue-painted roof; haze over
    # vegetation (the median of what reads closest to soil swapped on an unmasked cloudy date of the Slovenia km2).
    spectra = np.array([(0.03, 0.08, 0.04, 0.35), (0.11, 0.16, 0.24, 0.30), (0.06, 0.05, 0.03, 0.01),
                        (0.26, 0.2, 0.13, 0.33), (0.258, 0.224, 0.204, 0.35)], dtype=np.float32)

    def season(share: tuple[float, ...]) -> np.ndarray:
        return mixed_season(spectra, ("B02", "B03", "B04", "B08"), share)

    clear = np.ones((2, 50, 50), dtype=bool)
    swapped = tuple({"B02": "B04", "B04": "B02"}.get(b, b) for b in MODEL_BANDS)
    fields = season((0.6, 0.25, 0.1, 0.05, 0.0))
    assert np.isfinite(model.predict(fields, clear, MODEL_BANDS).crop_probability).all()
    with pytest.raises(InputError, match=r"2\d\.\d% of clear pixels read as bare soil with red \(B04\) and blue"):
        model.predict(fields, clear, swapped)
    model.predict(season((0.7, 0.1, 0.05, 0.15, 0.0)), clear, MODEL_BANDS)  # more roofs than soil: not soil swapped
    model.predict(season((0.9, 0.0, 0.1, 0.0, 0.0)), clear, swapped)  # vegetation and water alone cannot tell
    model.predict(season((0.0, 0.0, 0.0, 0.0, 1.0)), clear, MODEL_BANDS)  # a hazy date left unmasked
    sparse = season((0.95, 0.05, 0.0, 0.0, 0.0))  # a little soil, read swapped: over 3%
    with pytest.raises(InputError, match="bands look mislabelled"):
        model.predict(sparse, clear, swapped)


@pytest.mark.parametrize("pair, message", [
    (("B03", "B08"), r"green \(B03\) and NIR \(B08\) swapped"),
    (("B04", "B11"), r"red \(B04\) and SWIR1 \(B11\) swapped"),
    (("B08", "B11"), r"NIR \(B08\) and SWIR1 \(B11\) swapped"),
    (("B02", "B03"), r"blue \(B02\) and green \(B03\) swapped"),
])
def test_other_bands_swapped_are_refused_where_vegetation_shows_it(model, pair, message) -> None:
    # Per pixel kind (blue, green, red, NIR, SWIR1): vegetation, bare soil, clear water.
    spectra = np.array([(0.03, 0.08, 0.04, 0.35, 0.2), (0.11, 0.16, 0.24, 0.30, 0.38), (0.06, 0.05, 0.03, 0.01, 0.005)],
                       dtype=np.float32)
    bands = ("B02", "B03", "B04", "B08", "B11")
    clear = np.ones((2, 50, 50), dtype=bool)
    swapped = tuple({pair[0]: pair[1], pair[1]: pair[0]}.get(b, b) for b in MODEL_BANDS)
    fields = mixed_season(spectra, bands, (0.5, 0.3, 0.2))
    assert np.isfinite(model.predict(fields, clear, MODEL_BANDS).crop_probability).all()
    refusal = rf"bands look mislabelled: \d\d\.\d% of clear pixels \(\d+\) read as .*{message}"
    with pytest.raises(InputError, match=refusal):
        model.predict(fields, clear, swapped)
    model.predict(mixed_season(spectra, bands, (0.0, 0.6, 0.4)), clear, swapped)  # soil and water alone cannot tell


def test_a_dn_offset_taken_off_twice_is_named_not_blamed_on_band_order() -> None:
    """Every band 0.1 low (Earth Search's -1000 applied twice) read as "blue (B02) and green (B03) swapped"; it is
    named as the offset."""
    from farmcredit.segmentation.cnn import check_reflectance

    # Per pixel kind (blue, green, red, NIR, SWIR1): vegetation, bare soil, clear water.
    spectra = np.array([(0.03, 0.08, 0.04, 0.35, 0.2), (0.11, 0.16, 0.24, 0.30, 0.38), (0.06, 0.05, 0.03, 0.01, 0.005)],
                       dtype=np.float32)
    fields = mixed_season(spectra, ("B02", "B03", "B04", "B08", "B11"), (0.6, 0.3, 0.1))
    clear = np.ones((2, 50, 50), dtype=bool)
    with pytest.raises(InputError, match=r"reflectance is below 0 on over 20% of clear pixels in 3 bands \(B02, B03, "
                                         r"B04\): the DN offset looks applied twice .* --dn-offset"):
        check_reflectance(fields - 0.1, clear, MODEL_BANDS, MODEL_BANDS)
    check_reflectance(fields, clear, MODEL_BANDS, MODEL_BANDS)


def test_a_few_odd_pixels_in_a_small_window_are_not_refused_as_bands_swapped() -> None:
    """One field of 30 pixels reading as vegetation through a swap, 12% of a 16 x 16 window, is an odd field, not
    a swapped band (``SPECTRUM_PIXELS``); 60 such pixels are."""
    from farmcredit.segmentation.cnn import check_reflectance

    # Green and NIR swapped: vegetation (green 0.08, NIR 0.35) beside bare soil, which that swap leaves unremarkable.
    reflectance = np.full((1, len(MODEL_BANDS), 16, 16), np.nan, dtype=np.float32)
    for band, value in (("B02", 0.11), ("B03", 0.30), ("B04", 0.24), ("B08", 0.16), ("B11", 0.38)):
        reflectance[:, MODEL_BANDS.index(band)] = value
    clear = np.ones((1, 16, 16), dtype=bool)
    for count, refused in ((30, False), (60, True)):
        window = reflectance.copy()
        for band, value in (("B02", 0.03), ("B03", 0.35), ("B04", 0.04), ("B08", 0.08), ("B11", 0.2)):
            window[0, MODEL_BANDS.index(band)].flat[:count] = value
        if refused:
            with pytest.raises(InputError, match=r"green \(B03\) and NIR \(B08\) swapped"):
                check_reflectance(window, clear, MODEL_BANDS, MODEL_BANDS)
        else:
            check_reflectance(window, clear, MODEL_BANDS, MODEL_BANDS)


def test_crop_class_is_non_crop_exactly_where_the_calibrated_probability_is_below_one_half(model) -> None:
    reflectance, clear = season(2)

    def calibrated(b: float):
        card = replace(model.card, calibration={"a": 1.0, "b": b})
        return CnnCroplandModel(model.net, card, "cpu", chip_px=96).predict(reflectance, clear, MODEL_BANDS)

    probability = calibrated(0.0).crop_probability
    median_logit = float(np.nanmedian(np.log(probability / (1 - probability))))
    prediction, all_crop, no_crop = calibrated(-median_logit), calibrated(50.0), calibrated(-50.0)
    seen = clear.any(axis=0)
    crop = prediction.crop_probability >= 0.5
    assert 0.3 < crop[seen].mean() < 0.7
    np.testing.assert_array_equal(prediction.crop_class[seen] == 0, ~crop[seen])
    assert (prediction.crop_class[~seen] == -1).all() and (no_crop.crop_class[seen] == 0).all()
    # Where it is crop, the most likely crop class, whatever the calibration.
    assert (all_crop.crop_class[seen] >= 1).all()
    np.testing.assert_array_equal(prediction.crop_class[crop], all_crop.crop_class[crop])


def test_predict_holds_one_batch_of_chips_and_the_outputs_not_a_prepared_copy_of_the_raster(model) -> None:
    import tracemalloc

    rng = np.random.default_rng(0)
    reflectance = land(rng.random((2, 10, 800, 800), dtype=np.float32) * 0.4)
    clear = rng.random((2, 800, 800)) > 0.3
    chipped = CnnCroplandModel(model.net, model.card, "cpu", chip_px=128, batch_size=1)
    tracemalloc.start()  # numpy's allocations are traced
    try:
        chipped.predict(reflectance, clear, MODEL_BANDS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # A prepared copy of the whole raster plus full-raster logits for every class was 2.6x the input.
    assert peak < 0.3 * reflectance.nbytes


def test_weights_round_trip_and_bad_files_are_refused(model, tmp_path: Path) -> None:
    weights = tmp_path / "m.safetensors"
    save_model(model.net, model.card, weights)
    loaded = CnnCroplandModel.from_file(weights, device="cpu")
    reflectance, clear = season(2)
    np.testing.assert_array_equal(loaded.predict(reflectance, clear, MODEL_BANDS).crop_probability,
                                  model.predict(reflectance, clear, MODEL_BANDS).crop_probability)
    truncated = tmp_path / "t.safetensors"
    truncated.write_bytes(weights.read_bytes()[:1000])
    card_path(truncated).write_text(card_path(weights).read_text())
    with pytest.raises(InputError, match="truncated or corrupted"):
        CnnCroplandModel.from_file(truncated)
    good = json.loads(card_path(weights).read_text())
    edits = [({"architecture": "someone-elses-unet"}, "architecture"),
             ({"bands": good["bands"][::-1]}, "must be .* in this order"),
             ({"band_std": [0.0] * len(good["band_std"])}, "every std above 0"),
             ({"band_mean": ["0.1"] * len(good["band_mean"])}, "finite number per band"),
             ({"calibration": {"a": -1.0, "b": 0.0}}, "a \\(above 0\\)"),
             ({"calibration": "platt"}, "calibration must hold"),
             ({"calibration": {**good["calibration"], "mixed_margin": [0.1, 0.05]}}, "give area_bands_ha"),
             ({"calibration": {**good["calibration"], "mixed_margin": [0.1, 0.05], "area_bands_ha": 0.1}},
              "area_bands_ha must be a list"),
             ({"calibration": {**good["calibration"], "margin": 0.1}}, "calibration holds margin, which no farmcredit"),
             ({"width": "8"}, "width must be a positive whole number"),
             ({"classes": ["non_crop", "crop"]}, "normalisation/classes are not those these weights were saved with")]
    for edit, message in edits:  # each a clear one-line refusal, never a model scoring garbage or a traceback
        card_path(weights).write_text(json.dumps({**good, **edit}))
        with pytest.raises(InputError, match=message) as refused:
            CnnCroplandModel.from_file(weights)
        assert "\n" not in str(refused.value)


@pytest.mark.parametrize("width", [3000, 3_000_000])
def test_a_card_whose_width_the_weights_do_not_have_is_refused_before_its_network_is_built(tmp_path: Path,
                                                                                         width: int) -> None:
    """The shipped weights with their card's width edited (its SHA-256 is the weights' and still matches): 3,000 built
    6.7 GB of network in 15 s before the weights were found not to fit, 3,000,000 failed to allocate it (a
    RuntimeError traceback); the card is now checked against the file's header first (a card with ``deciding_hash``
    is refused before, as edited)."""
    from farmcredit.segmentation.card import DEFAULT_WEIGHTS

    weights = tmp_path / "m.safetensors"
    weights.write_bytes(DEFAULT_WEIGHTS.read_bytes())
    card = {k: v for k, v in json.loads(card_path(DEFAULT_WEIGHTS).read_text()).items() if k != "deciding_hash"}
    card_path(weights).write_text(json.dumps({**card, "width": width}))  # a card from before deciding_hash
    with pytest.raises(InputError, match=rf"do not fit the network its card describes \(6 classes, width {width}\): "
                                         r"size mismatch for date_encoder\.0\.weight"):
        CnnCroplandModel.from_file(weights, device="cpu")


def rehashed(weights: Path, tensors: dict) -> Path:
    """``weights`` rewritten to hold ``tensors``, its card's hashes updated to match (as saved, not damaged later)."""
    from safetensors.torch import save_file

    from farmcredit.segmentation.card import read_card, write_card

    card = read_card(weights)
    save_file(tensors, weights)
    write_card(card, weights)
    return weights


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_weights_not_finite_are_refused_naming_the_tensor_and_never_score_a_class(model, tmp_path, value) -> None:
    weights = tmp_path / "m.safetensors"
    save_model(model.net, model.card, weights)
    tensors = {key: tensor.clone() for key, tensor in model.net.state_dict().items()}
    tensors["head.bias"][0] = value
    with pytest.raises(InputError, match=r"m\.safetensors: weights hold numbers that are not finite .* in head\.bias"):
        CnnCroplandModel.from_file(rehashed(weights, tensors), device="cpu")
    # Scored in memory all the same, a pixel with no probability gets no class (class 1 on every pixel, before).
    net = copy.deepcopy(model.net)
    net.load_state_dict(tensors)
    reflectance, clear = season(2)
    prediction = CnnCroplandModel(net, model.card, "cpu", chip_px=96).predict(reflectance, clear, MODEL_BANDS)
    assert np.isnan(prediction.crop_probability).all() and (prediction.crop_class == -1).all()


def test_weights_with_a_tensor_the_network_lacks_are_refused_naming_it(model, tmp_path: Path) -> None:
    weights = tmp_path / "m.safetensors"
    save_model(model.net, model.card, weights)
    extra = {**model.net.state_dict(), "calibration.scale": torch.ones(3)}
    with pytest.raises(InputError, match=r"Unexpected key\(s\) in state_dict: \"calibration\.scale\""):
        CnnCroplandModel.from_file(rehashed(weights, extra), device="cpu")


@pytest.mark.parametrize("edit, field", [
    ({"name": None}, "not a farmcredit model card: name must be the model version .* got None"),
    ({"name": 2}, "not a farmcredit model card: name must be the model version .* got 2"),
    ({"name": " "}, "not a farmcredit model card: name ' ' is blank"),  # as train says of a blank name (name_problem)
    ({"code_version": ""}, "not a farmcredit model card: code_version '' is blank"),
    ({"code_version": 3}, "not a farmcredit model card: code_version must be the farmcredit version"),
    ({"classes": ["non_crop"]}, "classes must be 'non_crop' then at least one crop class"),
    ({"classes": []}, "classes must be 'non_crop' then at least one crop class"),
    ({"classes": ["crop", "non_crop"]}, "classes must be 'non_crop' then"),
    ({"classes": ["non_crop", 1, 2, 3, 4, 5]}, r"each a distinct name without commas, got \['non_crop', 1,"),
    ({"classes": ["non_crop"] * 6}, "each a distinct name without commas"),
    ({"classes": ["non_crop", "wheat", "maize", "rice", "soy,bean", "other_crop"]}, "without commas"),
    ({"classes": ["non_crop", "wheat", "maize", "rice", "", "other_crop"]}, "distinct name"),
    ({"classes": ["non_crop", ["wheat"], "maize", "rice", "soybean", "other_crop"]}, "distinct name"),
    # Written into project.qgs and cropland_class.qml, a control character made them XML QGIS cannot open.
    ({"classes": ["non_crop", "wheat\x01<x>", "maize", "rice", "soybean", "other_crop"]},
     r"classes: 'wheat\\x01<x>' holds U\+0001, a Cc character"),
    ({"classes": ["non_crop", "wheat", "maize", "rice", "soy\ue000", "other_crop"]}, r"holds U\+E000, a Co character"),
    ({"name": "v2\u202egpj"}, r"not a farmcredit model card: name 'v2\\u202egpj' holds U\+202E, a Cf character"),
    ({"code_version": "0.1\x1b[2J"}, r"not a farmcredit model card: code_version '0.1\\x1b\[2J' holds U\+001B"),
    ({"training": None}, "not a farmcredit model card: training must be a mapping, got None"),
    ({"training": []}, "not a farmcredit model card: training must be a mapping"),
    ({"training": {"scenes": None}}, "not a farmcredit model card: training.scenes must be a list"),
    ({"training": {"dea_train_regions": 5}}, "not a farmcredit model card: training.dea_train_regions must be"),
    # Read by evaluate to leave out what the model trained on: a number there was a TypeError then.
    ({"training": {"eurosat_trained_sha256": "abc"}}, "training.eurosat_trained_sha256 must be a list of SHA-256s"),
    ({"training": {"dea_trained_rows": [1, 2]}}, "training.dea_trained_rows must be base64 text"),
    ({"training": {"dea_trained_rows": "abc"}}, "training.dea_trained_rows must be base64 text of 8-byte"),
    ({"training": {"dea_trained_rows": "YWJj"}}, "training.dea_trained_rows must be base64 text of 8-byte"),
    ({"training": {"eurosat_split": {"seed": 0}}}, "not a farmcredit model card: training.eurosat_split must be"),
    ({"training": {"eurosat_split": {"seed": 0, "test_share": "half", "train_patches": 1}}},
     "not a farmcredit model card: training.eurosat_split must be"),
    ({"untrained_bands": [["B05"]]}, "untrained_bands .* must be among its bands"),
    ({"weights_sha256": None}, "not a farmcredit model card: weights_sha256 must be"),
])
def test_a_card_with_a_wrongly_typed_field_is_refused_when_read(model, tmp_path: Path, edit, field) -> None:
    from farmcredit.segmentation.card import DEFAULT_WEIGHTS, read_card

    weights = tmp_path / "m.safetensors"
    save_model(model.net, model.card, weights)
    card_path(weights).write_text(json.dumps({**json.loads(card_path(weights).read_text()), **edit}))
    with pytest.raises(InputError, match=field) as refused:  # not an AttributeError, TypeError or KeyError later
        read_card(weights)
    assert str(refused.value).startswith(f"{card_path(weights)}: ") and "\n" not in str(refused.value)
    assert read_card(DEFAULT_WEIGHTS).training["eurosat_split"]["test_share"] == 0.5  # the shipped card still loads


@pytest.mark.parametrize("edit", [
    lambda card: {"band_mean": [*card["band_mean"][:2], 0.5, *card["band_mean"][3:]]},  # declined every parcel
    lambda card: {"band_std": [*card["band_std"][:-1], 0.2]},
    lambda card: {"classes": [*card["classes"][:-1], "cotton"]},  # labelled other_crop pixels cotton
    lambda card: {"untrained_bands": ["B02"]},
])
def test_a_card_edited_to_other_normalisation_or_classes_than_its_weights_were_saved_with_is_refused(
        tmp_path: Path, edit) -> None:
    """The card's SHA-256 of the weights still matched, and the edited card was read as theirs: the shipped model with
    band_mean[2] set to 0.5 declined all 27 parcels of a scene, exit 0, no warning."""
    from farmcredit.segmentation.card import DEFAULT_WEIGHTS, read_card

    weights = tmp_path / "m.safetensors"
    weights.write_bytes(DEFAULT_WEIGHTS.read_bytes())
    card = json.loads(card_path(DEFAULT_WEIGHTS).read_text())
    card_path(weights).write_text(json.dumps({**card, **edit(card)}))
    with pytest.raises(InputError) as refused:
        CnnCroplandModel.from_file(weights, device="cpu")
    assert str(refused.value).startswith(f"{card_path(weights)}: the card's normalisation/classes are not those these "
                                         "weights were saved with: one of architecture, bands, band_mean, band_std, "
                                         "classes, width, untrained_bands was edited since")
    older = {k: v for k, v in {**card, **edit(card)}.items() if k != "deciding_hash"}
    card_path(weights).write_text(json.dumps(older))  # a card from before deciding_hash is read as it was
    assert read_card(weights).deciding_hash == ""


def test_a_card_whose_calibration_metrics_training_or_name_changed_still_reads_as_its_weights(model, tmp_path) -> None:
    from farmcredit.segmentation.card import read_card

    weights = tmp_path / "m.safetensors"
    save_model(model.net, model.card, weights)
    card = json.loads(card_path(weights).read_text())
    assert card["deciding_hash"]
    notes = {"name": "renamed", "calibration": {"a": 2.0, "b": 0.1}, "metrics": {"x": 1}, "training": {"seed": 3},
             "code_version": "0.2.0"}
    card_path(weights).write_text(json.dumps({**card, **notes}))
    assert read_card(weights).calibration == {"a": 2.0, "b": 0.1}


def test_a_card_named_in_any_script_is_read(model, tmp_path: Path) -> None:
    """Only characters a name cannot show are refused: the zero-width non-joiner spells Persian (a card's name is its
    weights file's stem)."""
    from farmcredit.segmentation.card import read_card

    weights = tmp_path / "m.safetensors"
    classes = ["non_crop", "小麦", "maize", "rice", "soybean", "other_crop"]
    save_model(model.net, replace(model.card, name="مدل\u200cگندم", classes=tuple(classes)), weights)
    assert (read_card(weights).name, read_card(weights).classes) == ("مدل\u200cگندم", tuple(classes))


def test_a_card_without_weights_sha256_is_refused_saying_so(model, tmp_path: Path) -> None:
    """It was compared with the weights' hash as an empty one: 'does not match the card's ... (a truncated file'."""
    from farmcredit.segmentation.card import read_card

    weights = tmp_path / "m.safetensors"
    save_model(model.net, model.card, weights)
    card = json.loads(card_path(weights).read_text())
    for edited in ({k: v for k, v in card.items() if k != "weights_sha256"}, {**card, "weights_sha256": ""}):
        card_path(weights).write_text(json.dumps(edited))
        with pytest.raises(InputError) as refused:
            read_card(weights)
        assert str(refused.value) == (f"{card_path(weights)}: the card has no weights_sha256 (not written by "
                                      "farmcredit train or calibrate, or edited by hand); restore it from the card "
                                      "written with these weights")


def test_a_card_not_in_utf8_or_given_for_the_weights_is_refused_saying_so(model, tmp_path: Path) -> None:
    from farmcredit.segmentation.card import read_card

    weights = tmp_path / "m.safetensors"
    save_model(model.net, model.card, weights)
    with pytest.raises(InputError, match=r"m\.json is a model card; give the weights beside it \(m\.safetensors\)"):
        read_card(card_path(weights))
    text = card_path(weights).read_text()
    card_path(weights).write_bytes(text.encode("utf-16"))  # as a Windows editor saves it
    with pytest.raises(InputError, match="not a farmcredit model card .*utf-8"):
        read_card(weights)
    card_path(weights).write_bytes(text.encode("utf-8-sig"))  # UTF-8 with a byte-order mark, as Notepad saves it
    assert read_card(weights).name == model.card.name
    card_path(weights).write_text("[" * 100_000 + "]" * 100_000)  # nested past Python's recursion limit
    with pytest.raises(InputError, match="not a farmcredit model card .*recursion"):
        read_card(weights)


def test_training_lowers_the_loss_and_resumes_exactly(small_season, tmp_path: Path) -> None:
    from safetensors import safe_open

    from farmcredit.segmentation.data import load_labelled_scene

    data = TrainingData([load_labelled_scene(small_season.root)])
    config = TrainingConfig(steps=150, width=8, scene_batch=2, learning_rate=1e-2)
    _, _, losses = train(data, config, device="cpu")
    assert np.mean(losses[-25:]) < 0.95 * np.mean(losses[:25])
    config = TrainingConfig(steps=16, width=8, scene_batch=2, checkpoint_every=8, learning_rate=1e-2, atmosphere=0.5)
    _, _, losses = train(data, config, device="cpu")
    _, _, clear_air = train(data, replace(config, atmosphere=0.0), device="cpu")
    assert clear_air[0] != losses[0]  # the atmosphere reaches the network
    checkpoint = tmp_path / "ckpt.safetensors"

    class Stop(Exception):
        pass

    def stop_after_9(step: int, total: int, loss: float) -> None:
        if step == 9:  # the checkpoint of step 8 is on disk; step 9's is not
            raise Stop

    with pytest.raises(Stop):
        train(data, config, device="cpu", checkpoint=checkpoint, progress=stop_after_9)
    _, card, resumed = train(data, config, device="cpu", checkpoint=checkpoint)
    np.testing.assert_allclose(resumed, losses, rtol=1e-4)
    assert card.training["resumed_from_step"] == 8
    # Resuming the finished run trains no step: its card has the seconds of the runs that did, not 0.
    with safe_open(str(checkpoint), "pt") as handle:
        trained_seconds = float(handle.metadata()["seconds"])
    _, again, _ = train(data, config, device="cpu", checkpoint=checkpoint)
    assert again.training["resumed_from_step"] == 16
    assert again.training["seconds"] == round(trained_seconds, 1) and trained_seconds > 0
    with pytest.raises(InputError, match="checkpoint is at step 16, past the 8 steps asked"):
        train(data, replace(config, steps=8), device="cpu", checkpoint=checkpoint)


def test_a_checkpoint_from_before_a_setting_existed_resumes_only_with_its_old_value(small_season, tmp_path) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    from farmcredit.segmentation.data import load_labelled_scene

    data = TrainingData([load_labelled_scene(small_season.root)])
    config = TrainingConfig(steps=4, width=8, scene_batch=1, checkpoint_every=2, atmosphere=0.0, pixel_crop_share=0.5,
                            narrow_nir_fill=0.0)
    checkpoint = tmp_path / "ckpt.safetensors"
    train(data, replace(config, steps=2), device="cpu", checkpoint=checkpoint)
    with safe_open(str(checkpoint), "pt") as handle:
        metadata, tensors = handle.metadata(), {key: handle.get_tensor(key) for key in handle.keys()}
    old = {k: v for k, v in json.loads(metadata["config"]).items() if k not in SETTINGS_ADDED}
    save_file(tensors, checkpoint, metadata={**metadata, "config": json.dumps(old)})
    with pytest.raises(InputError, match=r"atmosphere=0.0 \(now 0.25\), pixel_crop_share=0.5 \(now None\)"):
        train(data, replace(config, atmosphere=0.25, pixel_crop_share=None), device="cpu", checkpoint=checkpoint)
    _, _, losses = train(data, config, device="cpu", checkpoint=checkpoint)
    assert len(losses) == 4


def test_labelled_samples_are_drawn_at_the_asked_crop_share_or_their_own() -> None:
    from farmcredit.segmentation.training import _draw

    is_crop = np.arange(1000) < 100  # 10% crop
    rng = np.random.default_rng(0)
    assert is_crop[_draw(is_crop, 256, 0.5, rng)].sum() == 128
    assert is_crop[_draw(is_crop, 15, 0.5, rng)].sum() == 7
    assert is_crop[_draw(is_crop, 100, 0.3, rng)].sum() == 30
    own = np.concatenate([_draw(is_crop, 256, None, rng) for _ in range(40)])
    assert 0.08 < is_crop[own].mean() < 0.12
    assert is_crop[_draw(np.ones(5, bool), 8, None, rng)].all()  # at a share, one class is refused before training
    for share in (0.0, 1.0, 1.5):
        with pytest.raises(InputError, match="pixel_crop_share must be between 0 and 1"):
            TrainingConfig(pixel_crop_share=share)


def test_a_random_atmosphere_adds_haze_to_surface_and_takes_it_off_top_of_atmosphere_reflectance() -> None:
    from farmcredit.segmentation.training import _atmosphere

    surface = np.full((400, 2, len(MODEL_BANDS), 1, 2), 0.2, dtype=np.float32)
    surface[:, :, :, :, 1] = np.nan
    hazy = _atmosphere(surface, np.random.default_rng(0), 0.5, top_of_atmosphere=False)
    assert np.isnan(hazy[..., 1]).all()  # absent stays absent
    hazy = hazy[..., 0, 0]
    changed = (hazy != 0.2).any(axis=2)
    assert (changed == changed[:, :1]).all() and 0.4 < changed[:, 0].mean() < 0.6  # half the samples, all dates
    added = (hazy - 0.2)[changed].mean(axis=0)
    blue, nir, swir = (MODEL_BANDS.index(b) for b in ("B02", "B08", "B12"))
    assert added[blue] > added[nir] > added[swir] and 0.01 < added[blue] < 0.04
    cleared = (_atmosphere(surface, np.random.default_rng(0), 0.5, top_of_atmosphere=True)[..., 0, 0] - 0.2)
    assert cleared[changed].mean(axis=0)[blue] < -0.01 < 0.01 < added[blue]
    assert np.array_equal(hazy, _atmosphere(surface, np.random.default_rng(0), 0.5, False)[..., 0, 0])


def test_pixels_without_b8a_can_be_given_it_from_b08_and_patches_with_it_keep_theirs() -> None:
    from farmcredit.segmentation.data import LabelledPatches
    from farmcredit.segmentation.training import NARROW_NIR_GAIN, _batches, _narrow_nir

    narrow, broad = MODEL_BANDS.index("B8A"), MODEL_BANDS.index("B08")
    pixels = np.random.default_rng(0).uniform(0.05, 0.5, (300, 2, len(MODEL_BANDS), 1, 1)).astype(np.float32)
    pixels[:, :, narrow] = np.nan  # as DEA's
    filled = _narrow_nir(pixels, np.random.default_rng(1))
    gain = filled[:, :, narrow] / pixels[:, :, broad]
    np.testing.assert_allclose(gain, np.repeat(gain[:, :1], 2, axis=1), rtol=1e-6)  # one gain per sample
    assert NARROW_NIR_GAIN[0] <= gain.min() < gain.max() <= NARROW_NIR_GAIN[1]
    np.testing.assert_array_equal(np.delete(filled, narrow, axis=2), np.delete(pixels, narrow, axis=2))
    given = np.where(np.isnan(pixels), 0.3, pixels).astype(np.float32)  # B8A given (EuroSAT, scenes): kept
    assert _narrow_nir(given, np.random.default_rng(1)) is given
    # In training, about the asked share of pixel batches get it, and so can learn from all ten bands.
    source = LabelledPatches(pixels, np.ones((300, 2, 1, 1), dtype=bool), np.arange(300) % 2 == 0,
                             np.array(["a"] * 300), "memory")
    config = TrainingConfig(pixel_batch=8, narrow_nir_fill=0.5)
    batches = (_batches(TrainingData(pixels=source), [], config, config.type_weight, np.random.default_rng(k))
               for k in range(200))
    with_b8a = [next(batch)[0][2][:, narrow].mean() for batch in batches]  # availability (sample, band)
    assert 0.15 < np.mean(with_b8a) < 0.45  # half the batches filled, of which the band subsets with B8A


def test_the_audit_description_changes_with_anything_that_changes_the_output(model) -> None:
    from farmcredit.config import CroplandRuleConfig
    from farmcredit.segmentation import load_cropland_model

    recalibrated = CnnCroplandModel(model.net, replace(model.card, calibration={"a": 2.0, "b": 0.0}), device="cpu")
    rescored = CnnCroplandModel(model.net, replace(model.card, metrics={"x": 1}, training={"y": 2}), device="cpu")
    other_weights = copy.deepcopy(model.net)
    with torch.no_grad():
        next(other_weights.parameters()).add_(1e-3)
    retrained = CnnCroplandModel(other_weights, model.card, device="cpu")
    assert model.describe() == rescored.describe()  # notes about a model do not change what it computes
    assert len({m.describe()["hash"] for m in (model, recalibrated, retrained)}) == 3
    assert model.describe()["name"] == model.name
    assert (model.describe()["device"], model.describe()["precision"]) == ("cpu", "float32")
    rule, stricter = load_cropland_model("rule"), load_cropland_model("rule", CroplandRuleConfig(peak_mid=0.5))
    assert rule.describe()["hash"] != stricter.describe()["hash"]


def test_fine_tuning_starts_from_the_given_weights_and_drops_their_calibration(small_season, model, tmp_path) -> None:
    from farmcredit.segmentation.data import load_labelled_scene

    card = replace(model.card, calibration={"a": 2.0, "b": -0.5, "mixed_margin": 0.1})
    start = CnnCroplandModel(copy.deepcopy(model.net), card, device="cpu")
    data = TrainingData([load_labelled_scene(small_season.root)])
    net, tuned, losses = train(data, TrainingConfig(steps=3, width=32, scene_batch=1), device="cpu", init=start)
    assert tuned.width == model.card.width and len(losses) == 3
    assert tuned.calibration == uncalibrated() and tuned.weights_sha256 == ""  # of the old weights, not these
    assert tuned.training["init"] == {"name": "test", "architecture": ARCHITECTURE, "weights_sha256": "",
                                      "data_sha256": None}  # from memory
    assert any(not torch.equal(a, b) for a, b in zip(net.state_dict().values(), model.net.state_dict().values()))
    checkpoint, config = tmp_path / "ckpt.safetensors", TrainingConfig(steps=2, width=32, scene_batch=1)
    train(data, config, device="cpu", init=CnnCroplandModel(copy.deepcopy(model.net), card), checkpoint=checkpoint)
    with pytest.raises(InputError, match="other starting weights"):  # another base never resumes this fine-tune
        train(data, config, device="cpu", init=CnnCroplandModel(net, card), checkpoint=checkpoint)


def test_evaluate_prints_metrics_on_a_labelled_scene(small_season, model, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from farmcredit.cli import cli

    weights = tmp_path / "m.safetensors"
    save_model(model.net, model.card, weights)
    result = CliRunner().invoke(cli, ["evaluate", str(weights), str(small_season.root), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "accuracy=" in result.output and "F1=" in result.output and "IoU=" in result.output
    assert "confusion" in result.output and "reliability" in result.output


@pytest.mark.parametrize(("upsample", "reach"), [("nearest", 17), ("bilinear", 20)])
def test_no_output_depends_on_input_beyond_the_receptive_radius(upsample: str, reach: int) -> None:
    """One input pixel changed at each offset to the pooling grid: the farthest output it moves is ``reach`` away
    (interpolating reaches one coarse pixel further than repeating), within ``RECEPTIVE_RADIUS_PX``."""
    torch.manual_seed(0)
    net = CroplandNet(6, 2, 8, upsample).eval()
    x, clear, flags = torch.rand(1, 1, 6, 96, 96), torch.ones(1, 1, 96, 96, dtype=torch.bool), torch.ones(6)
    farthest = 0
    with torch.no_grad():
        before = net(x, clear, flags)
        for r, c in ((48 + dr, 48 + dc) for dr in range(4) for dc in range(4)):
            moved = x.clone()
            moved[..., r, c] += 1.0
            rows, cols = np.nonzero(((net(moved, clear, flags) - before).abs().amax(dim=(0, 1)) > 0).numpy())
            farthest = max(farthest, np.abs(rows - r).max(), np.abs(cols - c).max())
    assert farthest == reach <= RECEPTIVE_RADIUS_PX


def test_an_upsampling_the_network_does_not_know_is_refused() -> None:
    with pytest.raises(ValueError, match="upsample must be one of"):
        CroplandNet(6, 2, 8, "Bilinear")  # once read as nearest


def test_the_decoder_interpolates_a_coarse_ramp_where_v2_repeated_it_in_steps() -> None:
    """Repeating each coarse pixel (v2) turns a smooth coarse feature into steps on the pooling grid, the blocks
    with straight edges v2.6 drew into real probability maps; interpolating keeps it a ramp."""
    from farmcredit.segmentation.network import _upsample_to

    coarse = torch.arange(8.0).reshape(1, 1, 1, 8).expand(1, 1, 8, 8)
    like = torch.zeros(1, 1, 15, 15)
    ramp = _upsample_to(coarse, like, "bilinear")
    steps = _upsample_to(coarse, like, "nearest")
    assert ramp.shape == steps.shape == like.shape
    assert torch.equal(steps[0, 0, 0], torch.arange(15) // 2)
    np.testing.assert_allclose(torch.diff(ramp[0, 0, 0, 1:-1]), 0.5)  # pixel 2i + 1: 3/4 of i, 1/4 of i + 1
    assert ramp[0, 0, 0, 0] == 0.0 and torch.equal(ramp[0, 0, 0], ramp[0, 0, -1])  # the edge alone, as replicate


@pytest.mark.parametrize(("architecture", "upsample"), [("farmcredit-cropland-unet-v2", "nearest"),
                                                        (ARCHITECTURE, "bilinear")])
def test_weights_of_either_family_load_with_their_upsampling(model, tmp_path: Path, architecture: str,
                                                             upsample: str) -> None:
    weights = tmp_path / "m.safetensors"
    save_model(model.net, replace(model.card, architecture=architecture), weights)
    loaded = CnnCroplandModel.from_file(weights, device="cpu")
    assert loaded.net.upsample == upsample
    same = copy.deepcopy(model)
    same.net.upsample = upsample
    reflectance, clear = season(2)
    np.testing.assert_array_equal(loaded.predict(reflectance, clear, MODEL_BANDS).crop_probability,
                                  same.predict(reflectance, clear, MODEL_BANDS).crop_probability)
