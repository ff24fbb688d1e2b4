"""Training: what it refuses, what it does with partial labels, and what its cards and checkpoints record."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from farmcredit.errors import InputError
from farmcredit.segmentation.card import CLASSES, DEFAULT_WEIGHTS, MODEL_BANDS, card_path, read_card
from farmcredit.segmentation.data import (
    EUROSAT_BANDS,
    LabelledScene,
    load_eurosat,
    load_labelled_scene,
)
from farmcredit.segmentation.training import (
    DEFAULT_DEA_REGIONS,
    TrainingConfig,
    TrainingData,
    band_statistics,
    save_model,
    train,
    train_from_folders,
)
from farmcredit.simulate.spectra import as_land

SMALL = TrainingConfig(steps=3, width=8, scene_batch=1, patch_batch=4, atmosphere=0.0)


def scene_in_memory(rows: int, cols: int, labelled: tuple[slice, slice] | None = None, seed: int = 0) -> LabelledScene:
    """Random 3-date reflectance; labels everywhere, or only in ``labelled`` (NaN elsewhere)."""
    rng = np.random.default_rng(seed)
    cover = (rng.random((rows, cols)) > 0.5).astype(np.float32)
    if labelled is not None:
        known = np.zeros((rows, cols), dtype=bool)
        known[labelled] = True
        cover = np.where(known, cover, np.nan).astype(np.float32)
    crop_type = np.where(cover == 0, 0, -1).astype(np.int8)
    reflectance = rng.random((3, 10, rows, cols), dtype=np.float32) * 0.4
    as_land(*(reflectance[:, MODEL_BANDS.index(b)] for b in ("B02", "B03", "B04", "B08", "B11")))
    return LabelledScene(reflectance, rng.random((3, rows, cols)) > 0.2, cover, crop_type, f"memory-{rows}x{cols}")


def test_a_scene_smaller_than_a_chip_is_refused_before_training() -> None:
    with pytest.raises(InputError, match=r"memory-20x40: 20 x 40 px, smaller than the 32 x 32 px chips"):
        train(TrainingData([scene_in_memory(40, 40), scene_in_memory(20, 40)]), SMALL, device="cpu")


def test_a_batch_without_a_labelled_clear_pixel_gives_no_loss_term() -> None:
    from farmcredit.segmentation.training import _patch_loss, _scene_loss

    logits = torch.randn(2, len(CLASSES), 8, 8, requires_grad=True)
    clear = torch.ones(2, 3, 8, 8, dtype=torch.bool)
    crop_type = torch.full((2, 8, 8), -1)
    for cover, seen in ((torch.full((2, 8, 8), float("nan")), clear), (torch.ones(2, 8, 8), ~clear)):
        assert _scene_loss(0.3)(logits, cover, crop_type, seen) is None
    assert _patch_loss(2.0)(logits, torch.ones(2), ~clear) is None
    half = clear.clone()
    half[1] = False  # the second patch has no clear pixel: only the first is scored
    np.testing.assert_allclose(_patch_loss(2.0)(logits, torch.tensor([1.0, 0.0]), half).item(),
                               _patch_loss(2.0)(logits[:1], torch.tensor([1.0]), half[:1]).item())


def rgbn_stack(scene: LabelledScene) -> LabelledScene:
    """``scene`` as a four-band stack (B02, B03, B04, B08) would read: no other band, NaN where not clear."""
    from farmcredit.segmentation.card import MODEL_BANDS

    reflectance = np.where(scene.clear[:, None], scene.reflectance, np.nan).astype(np.float32)
    reflectance[:, [i for i, b in enumerate(MODEL_BANDS) if b not in ("B02", "B03", "B04", "B08")]] = np.nan
    return replace(scene, reflectance=reflectance, source=f"{scene.source}-rgbn")


def test_chips_of_a_four_band_stack_flag_their_missing_bands_absent_and_keep_their_clear_pixels() -> None:
    from farmcredit.segmentation.card import MODEL_BANDS
    from farmcredit.segmentation.training import _labelled_pixels, _network_inputs, _scene_batch

    full, stack = scene_in_memory(64, 64), rgbn_stack(scene_in_memory(64, 64, seed=1))
    config = replace(SMALL, scene_batch=6, max_dates=3)
    rgbn = np.isin(MODEL_BANDS, ("B02", "B03", "B04", "B08"))
    mixed = 0
    for step in range(30):
        reflectance, clear, available, *_ = _scene_batch([full, stack], [None, None], config,
                                                         np.random.default_rng([0, step]))
        from_stack = ~np.isfinite(reflectance[:, :, MODEL_BANDS.index("B05")]).any(axis=(1, 2, 3))
        assert not available[from_stack][:, ~rgbn].any(), f"step {step}: a band the stack lacks is flagged available"
        mixed += bool(from_stack.any() and not from_stack.all() and available[~from_stack][:, ~rgbn].any())
        _, seen, flags = _network_inputs(torch.from_numpy(reflectance), torch.from_numpy(clear), available,
                                         np.zeros(10, np.float32), np.ones(10, np.float32), MODEL_BANDS)
        np.testing.assert_array_equal(seen.numpy().any(axis=(1, 2, 3)), clear.any(axis=(1, 2, 3)))
        if flags.ndim == 2:
            np.testing.assert_array_equal(flags[:, : len(MODEL_BANDS)].numpy(), available)
    assert mixed  # batches of chips with different bands were drawn, each with its own
    assert _labelled_pixels(stack) is None


def test_fine_tuning_on_a_four_band_stack_learns_from_every_step() -> None:
    from farmcredit.segmentation.cnn import CnnCroplandModel

    stack = rgbn_stack(scene_in_memory(64, 64))
    init = CnnCroplandModel.from_file(DEFAULT_WEIGHTS, device="cpu")
    _, card, losses = train(TrainingData([stack]), replace(SMALL, steps=12, scene_batch=4, width=24), device="cpu",
                            init=init)
    assert np.isfinite(losses).all() and min(losses) > 0, losses
    assert "steps_without_labels" not in card.training


def test_a_fine_tune_of_v2_weights_is_of_the_current_family_and_upsamples_bilinearly(tmp_path: Path) -> None:
    from farmcredit.segmentation.card import ARCHITECTURE
    from farmcredit.segmentation.cnn import CnnCroplandModel

    shipped = CnnCroplandModel.from_file(DEFAULT_WEIGHTS, device="cpu")
    v2 = tmp_path / "v2.safetensors"
    save_model(shipped.net, replace(shipped.card, architecture="farmcredit-cropland-unet-v2"), v2)
    start = CnnCroplandModel.from_file(v2, device="cpu")
    before = {name: tensor.clone() for name, tensor in start.net.state_dict().items()}
    net, card, _ = train(TrainingData([rgbn_stack(scene_in_memory(64, 64))]), replace(SMALL, steps=2, width=24),
                         device="cpu", init=start)
    assert card.architecture == ARCHITECTURE and net.upsample == "bilinear"
    assert card.training["init"]["architecture"] == "farmcredit-cropland-unet-v2"
    # The starting model computes as its card says: trained in a copy, never switched to the new family.
    assert net is not start.net and start.net.upsample == "nearest"
    assert all(torch.equal(tensor, before[name]) for name, tensor in start.net.state_dict().items())


def test_a_step_without_a_labelled_clear_pixel_leaves_the_weights_as_they_were(recwarn) -> None:
    from farmcredit.segmentation.cnn import CnnCroplandModel

    labelled = scene_in_memory(40, 40)
    blind = replace(scene_in_memory(40, 40, seed=1), clear=np.zeros((3, 40, 40), dtype=bool))  # never seen clear
    init = CnnCroplandModel.from_file(DEFAULT_WEIGHTS, device="cpu")
    weights = []

    def snapshot(step: int, total: int, loss: float) -> None:
        weights.append(torch.cat([p.detach().flatten().clone() for p in init.net.parameters()]))

    _, card, losses = train(TrainingData([labelled, blind]), replace(SMALL, steps=12, width=24), device="cpu",
                            init=init, progress=snapshot)
    idle = [step for step in range(1, len(losses)) if not np.isfinite(losses[step])]
    assert any(np.isfinite(losses[:step]).any() for step in idle), losses  # Adam had momentum when one saw no label
    for step in idle:
        assert torch.equal(weights[step], weights[step - 1]), f"step {step + 1} moved the weights without a label"
    assert card.training["steps_without_labels"] == sum(not np.isfinite(loss) for loss in losses)
    finite = [loss for loss in losses if np.isfinite(loss)]
    assert card.training["final_loss"] == pytest.approx(np.mean(finite))
    assert any("drew no labelled pixel with a clear date" in str(w.message) for w in recwarn)


def test_training_data_without_a_labelled_clear_pixel_of_red_and_nir_is_refused_before_any_step() -> None:
    """Every step drew nothing to learn from, and a fine-tune wrote its starting weights back as trained."""
    from farmcredit.segmentation.cnn import CnnCroplandModel
    from farmcredit.segmentation.data import LabelledPatches

    block = (slice(0, 5), slice(0, 5))
    unseen = scene_in_memory(40, 40, labelled=block)
    unseen.clear[:, block[0], block[1]] = False  # clear only where unlabelled
    no_nir = rgbn_stack(scene_in_memory(40, 40, seed=1))
    no_nir.reflectance[:, MODEL_BANDS.index("B08")] = np.nan
    scene = scene_in_memory(16, 16, seed=2)
    patches = LabelledPatches(scene.reflectance[None].repeat(2, axis=0), np.zeros((2, *scene.clear.shape), bool),
                              np.array([True, False]), np.array(["AnnualCrop", "Forest"]), "patches")
    init = CnnCroplandModel.from_file(DEFAULT_WEIGHTS, device="cpu")
    ran = []
    for start in (None, init):
        with pytest.raises(InputError, match=r"^nothing to train on: no labelled pixel of memory-40x40, "
                                             r"memory-40x40-rgbn, patches has a clear date with red \(B04\) and NIR"):
            train(TrainingData([unseen, no_nir], patches), SMALL, device="cpu", init=start,
                  progress=lambda *step: ran.append(step))
    assert not ran
    seen = replace(patches, clear=patches.clear.copy())
    seen.clear[0, 0, 3, 3] = True  # one clear pixel of one patch is something to learn from
    _, _, losses = train(TrainingData([unseen, no_nir], seen), replace(SMALL, steps=1), device="cpu")
    assert len(losses) == 1


def test_training_whose_steps_all_drew_no_labelled_clear_pixel_is_refused_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scene's one clear labelled pixel, in a corner no chip drew, passed the up-front check; the run only warned
    and wrote weights as they started, with a card claiming the scene as trained on."""
    from click.testing import CliRunner

    from farmcredit.cli import cli

    corner = scene_in_memory(40, 40)
    corner.clear[:] = False
    corner.clear[0, 0, 0] = True  # one clear labelled pixel: only the chip at offset (0, 0) holds it
    with pytest.raises(InputError, match=r"^none of the 2 training steps drew a labelled pixel with a clear date"):
        train(TrainingData([corner]), replace(SMALL, steps=2), device="cpu")
    monkeypatch.setattr("farmcredit.segmentation.data.load_labelled_scene", lambda *args: corner)
    out = tmp_path / "m.safetensors"
    result = CliRunner().invoke(cli, ["train", str(tmp_path), "--out", str(out), "--steps", "2", "--device", "cpu"])
    assert isinstance(result.exception, InputError), result.output  # the entry point prints it and exits 2
    assert str(result.exception).startswith("none of the 2 training steps drew a labelled pixel")
    assert not out.exists() and not card_path(out).exists()


def test_a_partly_labelled_scene_trains_on_chips_that_hold_a_labelled_pixel() -> None:
    from farmcredit.segmentation.training import _labelled_pixels, _scene_batch

    block = (slice(80, 85), slice(3, 8))  # one 5 x 5 labelled block in a 96 x 112 scene
    sparse = scene_in_memory(96, 112, labelled=block)
    labelled = [_labelled_pixels(sparse)]
    assert len(labelled[0]) == 25 and _labelled_pixels(scene_in_memory(40, 40)) is None
    for step in range(40):
        cover = _scene_batch([sparse], labelled, SMALL, np.random.default_rng([0, step]))[3]
        assert np.isfinite(cover).any(axis=(1, 2)).all(), f"a chip of step {step} holds no labelled pixel"
    _, _, losses = train(TrainingData([sparse]), replace(SMALL, steps=6), device="cpu")
    assert np.isfinite(losses).all() and min(losses) > 0


def test_a_non_finite_loss_stops_training_and_writes_no_weights(small_season, tmp_path: Path) -> None:
    out = tmp_path / "diverged.safetensors"
    with pytest.raises(InputError, match=r"step \d+: the training loss is (nan|inf|-inf), so training stopped "
                                         r"and wrote no weights; likely the learning rate \(10000.0\) is too high"):
        train_from_folders((small_season.root,), out, replace(SMALL, learning_rate=1e4), device="cpu")
    assert not out.exists() and not card_path(out).exists()


def test_a_card_records_the_training_data_hash_absolute_paths_and_the_code(small_season, tmp_path: Path,
                                                                           monkeypatch) -> None:
    from farmcredit.segmentation.training import training_data_sha256
    from farmcredit.version import code_version

    monkeypatch.chdir(small_season.root.parent)
    out = tmp_path / "mine.safetensors"
    card = train_from_folders((Path(small_season.root.name),), out, SMALL, dea_regions=("central",), device="cpu")
    training = read_card(out).training
    assert training["scenes"] == [str(small_season.root.resolve())]
    assert "dea_regions" not in training and training["dea"] is None  # no DEA data, no DEA regions
    scene = load_labelled_scene(small_season.root)
    assert training["data_sha256"] == training_data_sha256(TrainingData([scene]))
    other = replace(scene, crop_cover=1.0 - scene.crop_cover)
    assert training_data_sha256(TrainingData([other])) != training["data_sha256"]
    assert re.fullmatch(r"\d+\.\d+\.\d+\+src\.[0-9a-f]{12}(\.git\.[0-9a-f]{12}(-dirty)?)?", card.code_version)
    assert card.code_version.split("+src.")[1][:12] == code_version()["source_sha256"][:12]  # as the audit's
    shipped = read_card(DEFAULT_WEIGHTS)
    assert re.fullmatch(r"\d+\.\d+\.\d+\+src\.[0-9a-f]{12}\.git\.[0-9a-f]{12}", shipped.code_version)  # clean
    assert len(shipped.training["data_sha256"]) == 64
    # A card written before these fields loads as it did.
    legacy = {k: v for k, v in json.loads(card_path(DEFAULT_WEIGHTS).read_text()).items() if k != "untrained_bands"}
    (tmp_path / "old.safetensors").write_bytes(DEFAULT_WEIGHTS.read_bytes())
    card_path(tmp_path / "old.safetensors").write_text(json.dumps({**legacy, "code_version": "0.1.0"}))
    assert read_card(tmp_path / "old.safetensors").untrained_bands == ()


def test_a_checkpoint_resumes_only_on_its_own_training_data_unless_written_before_it_said(tmp_path: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    config, checkpoint = replace(SMALL, steps=4, checkpoint_every=2), tmp_path / "ckpt.safetensors"
    ours, others = TrainingData([scene_in_memory(40, 40)]), TrainingData([scene_in_memory(40, 40, seed=1)])
    train(ours, replace(config, steps=2), device="cpu", checkpoint=checkpoint)
    with pytest.raises(InputError, match="checkpoint was trained on other data"):
        train(others, config, device="cpu", checkpoint=checkpoint)
    with safe_open(str(checkpoint), "pt") as handle:
        metadata, tensors = handle.metadata(), {key: handle.get_tensor(key) for key in handle.keys()}
    damaged = tmp_path / "damaged.safetensors"
    first = next(key for key in tensors if key.startswith("model."))
    save_file({**tensors, first: torch.full_like(tensors[first], float("nan"))}, damaged, metadata=metadata)
    with pytest.raises(InputError, match=f"checkpoint is damaged \\(not finite numbers in {re.escape(first)}"):
        train(ours, config, device="cpu", checkpoint=damaged)  # it read as a learning rate too high
    legacy = {k: v for k, v in metadata.items() if k != "data_sha256"}
    save_file(tensors, checkpoint, metadata=legacy)
    with pytest.warns(UserWarning, match=r"scheduled the learning rate for \[2, 4\] steps in turn"):
        _, card, losses = train(others, config, device="cpu", checkpoint=checkpoint)
    assert losses[:2] == json.loads(metadata["losses"]) and len(losses) == 4
    assert card.training["schedule_steps"] == [2, 4]  # its schedule was a 2-step run's until it stopped
    with pytest.warns(UserWarning, match=r"\[2, 4, 6\]"):  # kept through further resumes, each change in turn
        _, card, _ = train(others, replace(config, steps=6), device="cpu", checkpoint=checkpoint)
    assert card.training["schedule_steps"] == [2, 4, 6]
    # An older checkpoint of a network with crop types, resumed on labels without them: refused, not a traceback.
    typed = replace(scene_in_memory(40, 40), crop_type=np.full((40, 40), 1, dtype=np.int8))
    typed_checkpoint = tmp_path / "typed.safetensors"
    train(TrainingData([typed]), replace(config, steps=2), device="cpu", checkpoint=typed_checkpoint)
    with safe_open(str(typed_checkpoint), "pt") as handle:
        metadata, tensors = handle.metadata(), {key: handle.get_tensor(key) for key in handle.keys()}
    save_file(tensors, typed_checkpoint, metadata={k: v for k, v in metadata.items() if k != "data_sha256"})
    with pytest.raises(InputError, match="checkpoint holds another network than this run builds"):
        train(ours, config, device="cpu", checkpoint=typed_checkpoint)


def test_a_checkpoint_of_another_network_family_is_refused_not_resumed(tmp_path: Path) -> None:
    """A checkpoint of v2 training (nearest upsampling; written before checkpoints named their family) resumed would
    train the rest bilinearly under a card saying v3 trained it all."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    config, checkpoint = replace(SMALL, steps=4, checkpoint_every=2), tmp_path / "ckpt.safetensors"
    data = TrainingData([scene_in_memory(40, 40)])
    train(data, replace(config, steps=2), device="cpu", checkpoint=checkpoint)
    with safe_open(str(checkpoint), "pt") as handle:
        metadata, tensors = handle.metadata(), {key: handle.get_tensor(key) for key in handle.keys()}
    assert metadata["architecture"] == "farmcredit-cropland-unet-v3"
    save_file(tensors, checkpoint, metadata={k: v for k, v in metadata.items() if k != "architecture"})
    with pytest.raises(InputError, match="trained as farmcredit-cropland-unet-v2 \\(nearest upsampling\\), this run "
                                         "trains farmcredit-cropland-unet-v3; delete it"):
        train(data, config, device="cpu", checkpoint=checkpoint)
    save_file(tensors, checkpoint, metadata={**metadata, "architecture": "farmcredit-cropland-unet-v9"})
    with pytest.raises(InputError, match="trained as farmcredit-cropland-unet-v9 \\(unknown upsampling\\)"):
        train(data, config, device="cpu", checkpoint=checkpoint)  # a newer farmcredit's: not a KeyError


def test_a_checkpoint_saved_before_any_step_learnt_resumes_exactly_and_idle_steps_warn_of_no_scheduler(
        tmp_path: Path) -> None:
    from safetensors import safe_open

    blind = replace(scene_in_memory(40, 40, seed=1), clear=np.zeros((3, 40, 40), dtype=bool))  # never seen clear
    data = TrainingData([scene_in_memory(40, 40), blind])
    checkpoint = tmp_path / "ckpt.safetensors"

    class Stop(Exception):
        pass

    def stop_after_3(step: int, total: int, loss: float) -> None:
        if step == 3:  # the checkpoint of step 2 is on disk
            raise Stop

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for seed in range(40):  # one whose first two steps draw the blind scene alone: no Adam state at step 2
            config = replace(SMALL, steps=6, checkpoint_every=2, seed=seed)
            _, _, losses = train(data, config, device="cpu")
            if np.isnan(losses[:2]).all() and np.isfinite(losses[2:]).any():
                break
        else:
            pytest.fail("no seed drew the blind scene alone in its first two steps")
        with pytest.raises(Stop):
            train(data, config, device="cpu", checkpoint=checkpoint, progress=stop_after_3)
        with safe_open(str(checkpoint), "pt") as handle:
            assert handle.metadata()["step"] == "2" and not [key for key in handle.keys() if key.startswith("adam.")]
        _, card, resumed = train(data, config, device="cpu", checkpoint=checkpoint)
    np.testing.assert_allclose(resumed, losses, rtol=1e-4)  # NaN where a step drew no label, as uninterrupted
    assert card.training["resumed_from_step"] == 2
    assert not [w for w in caught if "lr_scheduler" in str(w.message)], "a step without labels stepped a scheduler"


def write_eurosat(root: Path, seed: int = 0) -> Path:
    """Four random 13-band 8 x 8 px EuroSAT-MS-like patches in each of three classes under ``root``."""
    rng = np.random.default_rng(seed)
    for name in ("AnnualCrop", "Forest", "Pasture"):
        (root / name).mkdir(parents=True)
        for i in range(4):
            with rasterio.open(root / name / f"{name}_{i}.tif", "w", driver="GTiff", count=13, height=8, width=8,
                               dtype="uint16", crs="EPSG:32632", transform=from_origin(5e5, 5e6, 10, 10)) as dst:
                bands = rng.integers(200, 4000, (13, 8, 8), dtype=np.uint16)
                as_land(*(bands[EUROSAT_BANDS.index(b)] for b in ("B02", "B03", "B04", "B08", "B11")))
                dst.write(bands)
    return root


@pytest.fixture
def tiny_eurosat(tmp_path: Path) -> Path:
    """``write_eurosat``'s twelve patches (seed 0) under ``labels/eurosat``."""
    return write_eurosat(tmp_path / "labels" / "eurosat")


def write_dea(root: Path, rows: dict[str, int], seed: int = 2) -> Path:
    """Random Digital Earth Africa tables under ``root``: ``rows[region]`` pixels in ``<region>/training_data.txt``."""
    from farmcredit.segmentation.data import DEA_BANDS

    rng = np.random.default_rng(seed)
    columns = ["Class"] + [f"{name}_S{season}" for season in (1, 2) for name in DEA_BANDS]
    for region, count in rows.items():
        (root / region).mkdir(parents=True)
        table = np.column_stack([rng.integers(0, 2, count), rng.random((count, len(columns) - 1)) * 0.4])
        for season in (1, 2):
            named = ("blue", "green", "red", "nir", "swir_1")
            as_land(*(table[:, columns.index(f"{name}_S{season}")] for name in named))
        np.savetxt(root / region / "training_data.txt", table, header=" ".join(columns))
    return root


def test_weights_go_to_a_new_safetensors_file_never_over_their_card_or_starting_weights(tiny_eurosat,
                                                                                      tmp_path: Path) -> None:
    for out, init, message in ((tmp_path / "m.json", None, "a .safetensors file"),
                               (tmp_path, None, "a .safetensors file"),
                               (DEFAULT_WEIGHTS, DEFAULT_WEIGHTS, "is the starting weights")):
        with pytest.raises(InputError, match=message):
            train_from_folders((), out, SMALL, eurosat=tiny_eurosat, init=init, device="cpu")
    assert read_card(DEFAULT_WEIGHTS).name == "cropland-cnn-v2.7"  # untouched


def test_weights_whose_file_name_the_card_cannot_hold_as_the_model_name_are_refused_before_training(
        tiny_eurosat, tmp_path: Path) -> None:
    """A file name with a newline trained and wrote a card named after it, which the card loader then refused."""
    from farmcredit.segmentation.cnn import CnnCroplandModel

    steps = []
    for stem, problem in (("bad\nname", r"holds U\+000A, a Cc character"), ("tab\there", r"holds U\+0009"),
                          ("  ", "is blank")):
        out = tmp_path / f"{stem}.safetensors"
        with pytest.raises(InputError, match=rf"the model is named after its file .*{problem}.*another file name"):
            train_from_folders((), out, SMALL, eurosat=tiny_eurosat, device="cpu",
                               progress=lambda *step: steps.append(step))
        assert not out.exists() and not card_path(out).exists()
    assert not steps
    joined = tmp_path / "模型\u200d.safetensors"  # a joiner spells names: kept, as the card loader keeps it
    train_from_folders((), joined, replace(SMALL, steps=1), eurosat=tiny_eurosat, device="cpu")
    assert CnnCroplandModel.from_file(joined, device="cpu").card.name == "模型\u200d"


def test_a_checkpoint_must_be_a_training_checkpoint_never_a_model_or_the_weights_written(tiny_eurosat,
                                                                                         tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(DEFAULT_WEIGHTS.read_bytes())  # weights without checkpoint metadata
    with pytest.raises(InputError, match=f"{re.escape(str(weights))}: is not a farmcredit training checkpoint"):
        train(TrainingData([scene_in_memory(40, 40)]), SMALL, device="cpu", checkpoint=weights)
    out = tmp_path / "m.safetensors"
    for same in ("m.safetensors", "m.json"):  # the weights or their card, however spelled
        with pytest.raises(InputError, match="is also where the weights or their card go"):
            train_from_folders((), out, SMALL, eurosat=tiny_eurosat, device="cpu",
                               checkpoint=tmp_path / "elsewhere" / ".." / same)
    (tmp_path / "taken.json").mkdir()
    with pytest.raises(InputError, match="taken.json: is a folder, where the weights' card goes"):
        train_from_folders((), tmp_path / "taken.safetensors", SMALL, eurosat=tiny_eurosat, device="cpu")
    with pytest.raises(InputError, match="is a folder; --checkpoint names the file"):
        train_from_folders((), out, SMALL, eurosat=tiny_eurosat, device="cpu", checkpoint=tmp_path)
    assert not out.exists() and not card_path(out).exists()
    with pytest.raises(InputError, match="--eurosat-test-share"):  # refused on its inputs: no folder made for it
        train_from_folders((), tmp_path / "new" / "m.safetensors", SMALL, eurosat_test_share=0.5, device="cpu",
                           checkpoint=tmp_path / "ck" / "c.safetensors")
    assert not (tmp_path / "new").exists() and not (tmp_path / "ck").exists()
    (tmp_path / "afile").write_text("")  # refused before training, whose weights would be lost at the end
    for where in ({"out": tmp_path / "afile" / "m.safetensors"}, {"checkpoint": tmp_path / "afile" / "c.safetensors"}):
        with pytest.raises(InputError, match="afile cannot be written"):
            train_from_folders((), where.get("out", out), SMALL, eurosat=tiny_eurosat, device="cpu",
                               checkpoint=where.get("checkpoint"), progress=lambda *_: pytest.fail("it trained"))


def test_eurosat_test_share_holds_patches_out_and_records_the_split_as_the_shipped_card(tiny_eurosat,
                                                                                         tmp_path: Path) -> None:
    from farmcredit.segmentation.data import eurosat_sha256, split_eurosat
    from farmcredit.segmentation.training import training_data_sha256

    card = train_from_folders((), tmp_path / "m.safetensors", SMALL, eurosat=tiny_eurosat, eurosat_test_share=0.5,
                              device="cpu")
    assert card.training["eurosat_split"] == {"seed": 0, "test_share": 0.5, "train_patches": 6, "test_patches": 6}
    assert card.training["eurosat_sha256"] == eurosat_sha256(tiny_eurosat)
    patches = load_eurosat(tiny_eurosat)
    kept, _ = split_eurosat(patches, 0.5, seed=0)
    assert card.training["data_sha256"] == training_data_sha256(TrainingData(patches=patches.subset(kept)))
    whole = train_from_folders((), tmp_path / "w.safetensors", SMALL, eurosat=tiny_eurosat, device="cpu")
    assert card.metrics["eurosat_test"]["overall"]["n"] == 6 and whole.metrics == {}  # scored on the held-out only
    assert "eurosat_split" not in whole.training  # trained on every patch: its card says which files
    assert whole.training["eurosat_sha256"] == card.training["eurosat_sha256"]
    assert whole.training["data_sha256"] == training_data_sha256(TrainingData(patches=patches))
    from farmcredit.segmentation.cnn import CnnCroplandModel
    from farmcredit.segmentation.metrics import evaluate_path

    held_out = evaluate_path(CnnCroplandModel.from_file(tmp_path / "m.safetensors", device="cpu"), tiny_eurosat)
    assert held_out["overall"]["n"] == 6 and held_out["note"].startswith("6 patches the model trained on left out")
    with pytest.raises(InputError, match="the model trained on all 12 of these patches .*--all-patches scores them"):
        evaluate_path(CnnCroplandModel.from_file(tmp_path / "w.safetensors", device="cpu"), tiny_eurosat)
    # A renamed copy, class folders in another case, is the same data: still only the held-out patches.
    copy = tmp_path / "elsewhere" / "EuroSAT_MS"
    for folder in tiny_eurosat.iterdir():
        shutil.copytree(folder, copy / folder.name.lower())
    renamed = evaluate_path(CnnCroplandModel.from_file(tmp_path / "m.safetensors", device="cpu"), copy)
    assert renamed["overall"] == held_out["overall"] and renamed["note"] == held_out["note"]
    (copy / "pasture" / "Pasture_0.tif").write_bytes((copy / "pasture" / "Pasture_1.tif").read_bytes())
    assert eurosat_sha256(copy) != card.training["eurosat_sha256"]  # other bytes are other data
    # 1.0 keeps nothing to train on, 0.01 holds none out, and a share needs EuroSAT patches.
    for share, eurosat in ((1.0, tiny_eurosat), (0.01, tiny_eurosat), (0.3, None)):
        with pytest.raises(InputError, match="--eurosat-test-share"):
            train_from_folders((), tmp_path / "x.safetensors", SMALL, eurosat=eurosat, eurosat_test_share=share)


def test_an_unreadable_eurosat_patch_is_left_out_of_training_with_a_warning_naming_it(tiny_eurosat,
                                                                                        tmp_path: Path) -> None:
    patch = tiny_eurosat / "Forest" / "Forest_0.tif"
    patch.write_bytes(patch.read_bytes()[:2000])  # truncated
    with pytest.warns(UserWarning, match=f"1 of 12 EuroSAT patch files cannot be read .*{re.escape(str(patch))}"):
        train_from_folders((), tmp_path / "m.safetensors", replace(SMALL, steps=1), eurosat=tiny_eurosat,
                           device="cpu")


def test_an_unreadable_dea_table_is_refused_naming_the_file(tmp_path: Path) -> None:
    from farmcredit.segmentation.data import load_dea

    table = tmp_path / "dea" / "central" / "training_data.txt"
    table.parent.mkdir(parents=True)
    for text, message in (("# Class blue_S1\n1 0.1\n", "no column green_S1"),
                          ("# Class blue_S1 red_S1\n1 0.1\n", "needs rows of 3 numbers"),
                          ("# Class blue_S1\n1 abc\n", "not a table of numbers")):
        table.write_text(text)
        with pytest.raises(InputError, match=f"{re.escape(str(table))}: {message}"):
            load_dea(tmp_path / "dea", ("central",))


def test_dea_pixels_and_eurosat_patches_train_refuses_as_evaluate_does_are_refused_naming_them(
        small_season, tiny_eurosat, tmp_path: Path) -> None:
    dea = write_dea(tmp_path / "dea", {"central": 30})
    table = dea / "central" / "training_data.txt"
    header, *rows = table.read_text().splitlines()
    scaled = [" ".join([row.split()[0], *(f"{float(v) * 10_000:g}" for v in row.split()[1:])]) for row in rows]
    table.write_text("\n".join([header, *scaled]) + "\n")  # digital numbers: once averaged into the card's band_mean
    out = tmp_path / "m.safetensors"
    with pytest.raises(InputError, match=f"{re.escape(str(table))}: reflectance must be 0-1"):
        train_from_folders((small_season.root,), out, SMALL, dea=dea, device="cpu")
    for patch in tiny_eurosat.glob("*/*.tif"):  # EuroSAT's DNs 16 times too high
        with rasterio.open(patch, "r+") as dst:
            dst.write(dst.read() * 16)
    with pytest.raises(InputError, match=f"{re.escape(str(tiny_eurosat))}: reflectance must be 0-1"):
        train_from_folders((small_season.root,), out, SMALL, eurosat=tiny_eurosat, device="cpu")
    assert not out.exists()


def test_band_statistics_count_only_values_that_can_be_reflectance() -> None:
    scene = scene_in_memory(40, 40)
    blue = MODEL_BANDS.index("B02")
    filled = scene.reflectance.copy()
    filled[0, blue, :2] = 6.5535  # saturated or fill values a clear mask let through: the network never sees them
    filled[1, blue, :2] = -0.9999
    clear = scene.clear.copy()
    clear[:2, :2] = True
    kept = scene.clear.copy()
    kept[:2, :2] = False
    expected = np.mean(scene.reflectance[:, blue][kept])
    mean, _, _ = band_statistics(TrainingData([replace(scene, reflectance=filled, clear=clear)]))
    assert mean[blue] == pytest.approx(expected, abs=1e-5)


def test_a_eurosat_or_dea_folder_given_as_a_scene_is_pointed_to_its_option(tiny_eurosat, tmp_path: Path) -> None:
    dea = write_dea(tmp_path / "dea", {"central": 10})
    for folder, option in ((tiny_eurosat, "--eurosat"), (dea, "--dea"), (dea / "central", "--dea")):
        with pytest.raises(InputError, match=f"{re.escape(str(folder))}: a .* folder, not a labelled scene .*; give "
                                             f"it with {option}$"):
            train_from_folders((folder,), tmp_path / "m.safetensors", SMALL, device="cpu")


def test_eurosat_patches_or_dea_pixels_of_one_class_drawn_at_a_crop_share_are_refused_saying_what_to_add(
        tiny_eurosat, tmp_path: Path) -> None:
    for name in ("Forest", "Pasture"):
        shutil.rmtree(tiny_eurosat / name)
    with pytest.raises(InputError, match=f"{re.escape(str(tiny_eurosat))}: every EuroSAT patch is crop \\(class "
                                         r"AnnualCrop\), and each step draws 50% crop patches; add class folders of "
                                         r"the other class \(Forest, .*\) to the folder given with --eurosat"):
        train_from_folders((), tmp_path / "m.safetensors", SMALL, eurosat=tiny_eurosat, device="cpu")
    dea = write_dea(tmp_path / "dea", {"central": 10})
    table = dea / "central" / "training_data.txt"
    header, *rows = table.read_text().splitlines()
    table.write_text("\n".join([header, *(f"1{row[row.index(' '):]}" for row in rows)]) + "\n")  # all crop
    with pytest.raises(InputError, match=r"every DEA pixel is crop, and --dea-crop-share 0.5 draws both classes; "
                                         r"leave it out .* or add regions with non-crop pixels \(--dea-regions\)"):
        train_from_folders((), tmp_path / "m.safetensors", replace(SMALL, pixel_crop_share=0.5), dea=dea, device="cpu")
    assert not (tmp_path / "m.safetensors").exists()


def test_the_shipped_cards_eurosat_and_dea_hashes_are_those_of_the_shared_data(shared_data: Path) -> None:
    from farmcredit.segmentation.data import eurosat_sha256, files_sha256

    labels = shared_data / "labels"
    training = json.loads(card_path(DEFAULT_WEIGHTS).read_text())["training"]
    assert eurosat_sha256(labels / "eurosat") == training["eurosat_sha256"]
    regions = training["dea_train_regions"] + training["dea_test_regions"]
    dea = [labels / "deafrica-cropmask" / region / "training_data.txt" for region in regions]
    assert files_sha256(dea, labels) == training["dea_sha256"]


def test_the_shipped_card_records_each_eurosat_file_and_dea_row_it_trained_on(shared_data: Path) -> None:
    from farmcredit.segmentation.data import load_dea, split_eurosat
    from farmcredit.segmentation.training import trained_on

    labels = shared_data / "labels"
    path = card_path(DEFAULT_WEIGHTS)
    training = json.loads(path.read_text())["training"]
    split = training["eurosat_split"]
    patches = load_eurosat(labels / "eurosat")
    kept, _ = split_eurosat(patches, split["test_share"], seed=split["seed"])
    pixels = load_dea(labels / "deafrica-cropmask", tuple(training["dea_train_regions"]))
    expected = trained_on(patches.subset(kept), pixels)
    assert {key: training[key] for key in expected} == expected
    assert len(training["eurosat_trained_sha256"]) == split["train_patches"]
    assert path.stat().st_size < 300_000  # 8 bytes (as base64) per trained DEA row


def _without_trained_records(model):
    """``model`` with a card from before cards recorded each EuroSAT file and DEA row trained on."""
    from farmcredit.segmentation.cnn import CnnCroplandModel

    training = {key: value for key, value in model.card.training.items()
                if key not in ("eurosat_trained_sha256", "dea_trained_rows")}
    return CnnCroplandModel(model.net, replace(model.card, training=training), device="cpu")


def test_evaluate_leaves_out_the_eurosat_files_and_dea_rows_trained_on_in_any_copy_of_them(tiny_eurosat,
                                                                                           tmp_path: Path) -> None:
    """Only the shipped folders kept their split: a superset, subset, renaming, subfolder or pooled table scored the
    patches and pixels trained on, and a region's note went by its folder's name."""
    from farmcredit.segmentation.cnn import CnnCroplandModel
    from farmcredit.segmentation.data import eurosat_files, read_dea_table, split_eurosat
    from farmcredit.segmentation.metrics import evaluate_path

    dea = write_dea(tmp_path / "dea", {"central": 30, "northern": 20})
    card = train_from_folders((), tmp_path / "m.safetensors", SMALL, eurosat=tiny_eurosat, eurosat_test_share=0.5,
                              dea=dea, dea_regions=("central",), device="cpu")
    assert len(card.training["eurosat_trained_sha256"]) == 6
    model = CnnCroplandModel.from_file(tmp_path / "m.safetensors", device="cpu")
    # Every file renamed .TIF in a subfolder, beside twelve other patches, one held-out patch left out.
    copy, extra = tmp_path / "copy", write_eurosat(tmp_path / "extra", seed=1)
    for path, name in [*eurosat_files(tiny_eurosat), *eurosat_files(extra)]:
        (copy / name / "2017").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, copy / name / "2017" / f"{path.parent.parent.name}-{path.stem}.TIF")
    _, test = split_eurosat(load_eurosat(tiny_eurosat), 0.5, seed=0)
    path, name = eurosat_files(tiny_eurosat)[test[0]]
    (copy / name / "2017" / f"eurosat-{path.stem}.TIF").unlink()
    report = evaluate_path(model, copy)
    assert report["overall"]["n"] == 5 + 12
    assert report["note"] == ("6 patches the model trained on left out (matched by their band values); --all-patches "
                              "scores them too")
    assert evaluate_path(model, copy, all_patches=True)["overall"]["n"] == 23
    # DEA: both regions pooled in one table of another name, columns in another order, comma-separated.
    tables = [read_dea_table(dea, region) for region in ("central", "northern")]
    names = list(reversed(tables[0]))
    (tmp_path / "pooled" / "africa").mkdir(parents=True)
    np.savetxt(tmp_path / "pooled" / "africa" / "training_data.txt",
               np.concatenate([np.column_stack([table[name] for name in names]) for table in tables]),
               header=",".join(names), delimiter=",")
    pooled = evaluate_path(model, tmp_path / "pooled")
    assert pooled["overall"]["n"] == 20
    assert pooled["note"] == ("30 pixels the model trained on left out (matched by their band values); --all-patches "
                              "scores them too")
    assert evaluate_path(model, dea / "northern")["overall"] == pooled["overall"]
    (tmp_path / "capital").mkdir()
    shutil.copytree(dea / "central", tmp_path / "capital" / "Central")
    with pytest.raises(InputError, match="the model trained on all 30 of these pixels .*--all-patches scores them"):
        evaluate_path(model, tmp_path / "capital" / "Central")
    every = evaluate_path(model, tmp_path / "capital" / "Central", all_patches=True)
    assert every["overall"]["n"] == 30 and "30 of which the model trained on" in every["note"]
    shutil.copytree(dea / "northern", tmp_path / "misnamed" / "central")
    unseen = evaluate_path(model, tmp_path / "misnamed" / "central")
    assert unseen["note"] == "none of these pixels is one the model trained on (matched by their band values)"
    # Older cards: the split of the very same files, and the regions' names, ignoring case.
    older = _without_trained_records(model)
    assert evaluate_path(older, tiny_eurosat)["note"].startswith("the 6 of 12 patches the model's card held out")
    assert "does not name these files" in evaluate_path(older, copy)["note"]
    assert evaluate_path(older, tmp_path / "capital" / "Central")["note"] == ("the model trained on Central: not an "
                                                                              "out-of-region score")


def test_evaluate_leaves_out_eurosat_patches_trained_on_in_a_copy_compressed_another_way(tiny_eurosat,
                                                                                         tmp_path: Path) -> None:
    """Patches were matched by their files' bytes: a pixel-identical copy compressed with deflate was said to hold
    none of the patches the model trained on."""
    from farmcredit.segmentation.cnn import CnnCroplandModel
    from farmcredit.segmentation.data import eurosat_files
    from farmcredit.segmentation.metrics import evaluate_path

    train_from_folders((), tmp_path / "m.safetensors", SMALL, eurosat=tiny_eurosat, eurosat_test_share=0.5,
                       device="cpu")
    model = CnnCroplandModel.from_file(tmp_path / "m.safetensors", device="cpu")
    for path, name in eurosat_files(tiny_eurosat):
        with rasterio.open(path) as src:
            profile, values = {**src.profile, "compress": "deflate"}, src.read()
        (tmp_path / "copy" / name).mkdir(parents=True, exist_ok=True)
        with rasterio.open(tmp_path / "copy" / name / path.name, "w", **profile) as dst:
            dst.write(values)
        assert (tmp_path / "copy" / name / path.name).read_bytes() != path.read_bytes()
    report = evaluate_path(model, tmp_path / "copy")
    assert report["overall"]["n"] == 6
    assert report["note"].startswith("6 patches the model trained on left out (matched by their band values)")


def test_a_fine_tune_records_the_eurosat_files_and_dea_rows_its_starting_weights_trained_on_too() -> None:
    from farmcredit.segmentation.data import pack_fingerprints, unpack_fingerprints
    from farmcredit.segmentation.training import with_starting_exposure

    base = {"dea": "/d", "dea_train_regions": ["central"], "dea_trained_rows": pack_fingerprints(np.array([2, 1])),
            "eurosat": "/e", "eurosat_sha256": "a" * 64, "eurosat_trained_sha256": ["b" * 64]}
    mine = {"dea": "/d", "dea_regions": ("northern",), "dea_trained_rows": pack_fingerprints(np.array([3])),
            "eurosat_sha256": "c" * 64, "eurosat_trained_sha256": ["d" * 64]}
    merged = with_starting_exposure(mine, base)
    assert unpack_fingerprints(merged["dea_trained_rows"]).tolist() == [1, 2, 3]
    assert merged["eurosat_trained_sha256"] == ["b" * 64, "d" * 64]
    carried = with_starting_exposure({}, base)  # this run reads neither: the base's stand
    assert carried["dea_trained_rows"] == base["dea_trained_rows"]
    assert carried["eurosat_trained_sha256"] == ["b" * 64]
    # Starting weights that trained on EuroSAT and DEA without such records: this run's alone would be too few.
    older = with_starting_exposure(mine, {"dea": "/d", "eurosat": "/e"})
    assert "dea_trained_rows" not in older and "eurosat_trained_sha256" not in older
    fresh = with_starting_exposure(mine, {"scenes": ["/s"]})  # a base that never saw either
    assert fresh["dea_trained_rows"] == mine["dea_trained_rows"]
    assert fresh["eurosat_trained_sha256"] == mine["eurosat_trained_sha256"]


def test_bands_no_training_sample_had_are_recorded_and_ignored_when_given_later() -> None:
    from farmcredit.segmentation.card import MODEL_BANDS
    from farmcredit.segmentation.cnn import CnnCroplandModel

    rgbn = ("B02", "B03", "B04", "B08")
    scene = scene_in_memory(40, 40)
    only_rgbn = scene.reflectance.copy()
    only_rgbn[:, [i for i, b in enumerate(MODEL_BANDS) if b not in rgbn]] = np.nan
    net, card, _ = train(TrainingData([replace(scene, reflectance=only_rgbn)]), SMALL, device="cpu")
    assert set(card.untrained_bands) == set(MODEL_BANDS) - set(rgbn)
    assert np.isfinite(card.band_mean).all() and np.isfinite(card.band_std).all()
    model = CnnCroplandModel(net, card, device="cpu")
    given = model.predict(scene.reflectance, scene.clear, MODEL_BANDS).crop_probability
    keep = [MODEL_BANDS.index(b) for b in rgbn]
    expected = model.predict(scene.reflectance[:, keep], scene.clear, rgbn).crop_probability
    np.testing.assert_array_equal(given, expected)
    forgetful = CnnCroplandModel(net, replace(card, untrained_bands=()), "cpu")
    assert model.describe()["hash"] != forgetful.describe()["hash"]
    # Fine-tuned on all ten bands, it still leaves the bands it never learnt unused, as at inference.
    tuned, tuned_card, _ = train(TrainingData([scene]), SMALL, device="cpu", init=model)
    assert tuned_card.untrained_bands == card.untrained_bands
    tuned_model = CnnCroplandModel(tuned, tuned_card, device="cpu")
    np.testing.assert_array_equal(tuned_model.predict(scene.reflectance, scene.clear, MODEL_BANDS).crop_probability,
                                  tuned_model.predict(scene.reflectance[:, keep], scene.clear, rgbn).crop_probability)
    no_red = only_rgbn.copy()
    no_red[:, MODEL_BANDS.index("B04")] = np.nan
    without_red = TrainingData([replace(scene, reflectance=no_red)])
    with pytest.raises(InputError, match="no clear red"):
        band_statistics(without_red)
    with pytest.raises(InputError, match="nothing to train on"):  # told before the statistics are taken
        train(without_red, SMALL, device="cpu")


def test_dea_regions_left_out_of_training_are_scored_into_the_card(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from farmcredit.cli import cli

    write_dea(tmp_path / "dea", {"central": 60, "northern": 25})
    out = tmp_path / "dea-only.safetensors"
    result = CliRunner().invoke(cli, ["train", "--dea", str(tmp_path / "dea"), "--dea-regions", "central",
                                      "--out", str(out), "--steps", "2", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "dea_unseen_regions: n=25 accuracy=" in result.output
    card = read_card(out)
    assert card.training["dea_regions"] == ["central"] and card.training["dea_test_regions"] == ["northern"]
    assert card.metrics["dea_unseen_regions"]["accuracy_per_group"].keys() == {"northern"}
    # Fine-tuned on northern, nothing is left unseen: central is the starting weights'.
    tuned = train_from_folders((), tmp_path / "tuned.safetensors", SMALL, dea=tmp_path / "dea",
                               dea_regions=("northern",), init=out, device="cpu")
    assert tuned.training["dea_train_regions"] == ["central", "northern"] and tuned.metrics == {}
    assert "dea_test_regions" not in tuned.training


def test_train_takes_one_dea_region_folder_as_evaluate_does(tmp_path: Path) -> None:
    dea = write_dea(tmp_path / "dea", {"central": 30, "northern": 20})
    for asked in (("northern",), ()):  # named, or by default the region the folder is
        card = train_from_folders((), tmp_path / "n.safetensors", SMALL, dea=dea / "northern", dea_regions=asked,
                                  device="cpu")
        assert card.training["dea"] == str(dea) and card.training["dea_regions"] == ("northern",)
        assert card.metrics == {}  # central is beside the folder given, not in it
    with pytest.raises(InputError, match="northern: holds no Digital Earth Africa region central; it holds northern"):
        train_from_folders((), tmp_path / "c.safetensors", SMALL, dea=dea / "northern", dea_regions=("central",))


def test_a_folder_of_ones_own_dea_regions_trains_on_all_by_default_and_scores_those_left_out(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from farmcredit.cli import cli

    own = write_dea(tmp_path / "own", {"kenya": 30, "ghana": 20})
    with pytest.raises(InputError, match="own: holds no Digital Earth Africa region central; it holds ghana, kenya: "
                                         "choose the regions to train on among them with --dea-regions"):
        train_from_folders((), tmp_path / "x.safetensors", SMALL, dea=own, dea_regions=("central", "kenya"))
    args = ["train", "--dea", str(own), "--steps", "2", "--device", "cpu", "--out"]
    every = CliRunner().invoke(cli, [*args, str(tmp_path / "all.safetensors")])
    assert every.exit_code == 0, every.output
    assert read_card(tmp_path / "all.safetensors").training["dea_regions"] == ["ghana", "kenya"]
    kenya = CliRunner().invoke(cli, [*args, str(tmp_path / "kenya.safetensors"), "--dea-regions", "kenya"])
    assert kenya.exit_code == 0, kenya.output
    assert "dea_unseen_regions: n=20 accuracy=" in kenya.output
    card = read_card(tmp_path / "kenya.safetensors")
    assert card.training["dea_test_regions"] == ["ghana"]
    assert card.metrics["dea_unseen_regions"]["accuracy_per_group"].keys() == {"ghana"}
    # A folder holding the shipped model's four training regions trains on those by default, as it was.
    shipped_layout = write_dea(tmp_path / "six", dict.fromkeys((*DEFAULT_DEA_REGIONS, "northern", "kenya"), 8))
    card = train_from_folders((), tmp_path / "six.safetensors", SMALL, dea=shipped_layout, device="cpu")
    assert card.training["dea_regions"] == DEFAULT_DEA_REGIONS
    assert card.training["dea_test_regions"] == ("kenya", "northern")


def test_a_fine_tune_counts_what_its_starting_weights_saw() -> None:
    from farmcredit.segmentation.training import with_starting_exposure

    shipped = read_card(DEFAULT_WEIGHTS).training
    split = {"seed": 0, "test_share": 0.5, "train_patches": 100, "test_patches": 100}
    mine = {"dea": "/d", "dea_regions": ("northern",), "eurosat_sha256": shipped["eurosat_sha256"],
            "eurosat_split": split}
    merged = with_starting_exposure(mine, shipped)
    assert merged["dea_train_regions"] == ["central", "eastern", "northern", "sahel", "south_eastern"]
    assert merged["eurosat_split"] == split  # the same files split the same way: the held-out patches stay held out
    other_share = with_starting_exposure({**mine, "eurosat_split": {**split, "test_share": 0.3}}, shipped)
    assert "eurosat_split" not in other_share  # some of its held-out patches trained the starting weights
    no_eurosat = with_starting_exposure({"dea": None}, shipped)
    assert no_eurosat["eurosat_split"] == shipped["eurosat_split"] and "dea_train_regions" in no_eurosat
    legacy = with_starting_exposure({"dea": None}, {"dea": "/d", "eurosat": "/e"})
    assert len(legacy["dea_train_regions"]) == 6 and legacy["eurosat_sha256"] is None
    scenes = with_starting_exposure({"scenes": ["/s/b", "/s/c"]}, {"scenes": ["/s/a", "/s/b"]})["scenes"]
    assert scenes == ["/s/a", "/s/b", "/s/c"]  # the base's scenes too, each once


def test_a_fine_tune_on_other_eurosat_files_keeps_its_split_and_records_what_the_base_trained_on() -> None:
    from farmcredit.segmentation.training import with_starting_exposure

    shipped = read_card(DEFAULT_WEIGHTS).training
    split = {"seed": 0, "test_share": 0.5, "train_patches": 100, "test_patches": 100}
    own = {"eurosat_sha256": "a" * 64, "eurosat_split": split}
    merged = with_starting_exposure(own, shipped)
    assert merged["eurosat_split"] == split and merged["eurosat_sha256"] == "a" * 64
    assert merged["eurosat_base_sha256"] == [shipped["eurosat_sha256"]]
    # Fine-tuned again on the shipped files, no split stands: the shipped model trained on some of them.
    again = with_starting_exposure({"eurosat_sha256": shipped["eurosat_sha256"], "eurosat_split": split}, merged)
    assert "eurosat_split" not in again and again["eurosat_base_sha256"] == ["a" * 64]
    # A third set keeps its split and lists both; a run without EuroSAT carries all of it.
    third = with_starting_exposure({"eurosat_sha256": "c" * 64, "eurosat_split": split}, merged)
    assert third["eurosat_split"] == split and third["eurosat_base_sha256"] == ["a" * 64, shipped["eurosat_sha256"]]
    assert with_starting_exposure({}, merged)["eurosat_base_sha256"] == [shipped["eurosat_sha256"]]
    # Starting weights whose card does not name their EuroSAT files may have trained on these: no split.
    assert "eurosat_split" not in with_starting_exposure(own, {"eurosat": "/e"})
    assert "eurosat_base_sha256" not in with_starting_exposure(own, {"eurosat": "/e"})


def test_a_fine_tunes_held_out_patches_of_other_files_are_scored_with_the_bases_caveat(tiny_eurosat,
                                                                                        tmp_path: Path) -> None:
    from click.testing import CliRunner

    from farmcredit.cli import cli
    from farmcredit.segmentation.cnn import CnnCroplandModel
    from farmcredit.segmentation.metrics import evaluate_path

    base = tmp_path / "base.safetensors"
    base_card = train_from_folders((), base, SMALL, eurosat=tiny_eurosat, eurosat_test_share=0.5, device="cpu")
    own = write_eurosat(tmp_path / "own" / "eurosat", seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the base's card lists its patches: none of these is one, no caveat
        tuned = train_from_folders((), tmp_path / "t.safetensors", SMALL, eurosat=own, eurosat_test_share=0.5,
                                   init=base, device="cpu")
    assert tuned.training["eurosat_split"]["test_patches"] == 6
    assert tuned.training["eurosat_base_sha256"] == [base_card.training["eurosat_sha256"]]
    held_out = tuned.metrics["eurosat_test"]
    assert held_out["overall"]["n"] == 6 and "note" not in held_out
    assert len(tuned.training["eurosat_trained_sha256"]) == 12  # the base's six patches and its own six
    report = evaluate_path(CnnCroplandModel.from_file(tmp_path / "t.safetensors", device="cpu"), own)
    assert report["overall"]["n"] == 6  # the held-out patches, not all twelve "trained on"
    assert report["note"].startswith("6 patches the model trained on left out (matched by their band values)")
    # A base whose card lists no patch it trained on: the held-out patches may be some of them.
    training = json.loads(card_path(base).read_text())
    del training["training"]["eurosat_trained_sha256"]
    card_path(base).write_text(json.dumps(training))
    with pytest.warns(UserWarning, match="the 6 EuroSAT patches are held out of this fine-tune only: its starting "
                                         "weights trained on other EuroSAT files"):
        unlisted = train_from_folders((), tmp_path / "u.safetensors", SMALL, eurosat=own, eurosat_test_share=0.5,
                                      init=base, device="cpu")
    assert "may include some of these patches" in unlisted.metrics["eurosat_test"]["note"]
    training["training"]["eurosat_trained_sha256"] = base_card.training["eurosat_trained_sha256"]
    card_path(base).write_text(json.dumps(training))
    # The base's own files split another way: dropped as before, now saying so.
    with pytest.warns(UserWarning, match=r"--eurosat-test-share 0.25 dropped: the starting weights trained on these"):
        other_share = train_from_folders((), tmp_path / "s.safetensors", SMALL, eurosat=tiny_eurosat,
                                         eurosat_test_share=0.25, init=base, device="cpu")
    assert "eurosat_split" not in other_share.training and other_share.metrics == {}
    said = CliRunner().invoke(cli, ["train", "--eurosat", str(tiny_eurosat), "--eurosat-test-share", "0.25", "--init",
                                    str(base), "--out", str(tmp_path / "c.safetensors"), "--steps", "2",
                                    "--device", "cpu"])
    assert said.exit_code == 0, said.output
    assert "warning: --eurosat-test-share 0.25 dropped" in said.output and "UserWarning" not in said.output


def test_a_fine_tunes_card_scores_only_held_out_patches_its_starting_weights_did_not_train_on(tiny_eurosat,
                                                                                                tmp_path: Path) -> None:
    """A fine-tune on a superset of its base's EuroSAT files scored, in its card, held-out patches the base trained
    on (n=40 at 0.675 where evaluate, leaving them out, scored n=22 at 0.591)."""
    from farmcredit.segmentation.cnn import CnnCroplandModel
    from farmcredit.segmentation.metrics import evaluate_path

    base = tmp_path / "base.safetensors"
    train_from_folders((), base, SMALL, eurosat=tiny_eurosat, eurosat_test_share=0.5, device="cpu")
    plus = write_eurosat(tmp_path / "plus", seed=1)
    for path in tiny_eurosat.rglob("*.tif"):
        shutil.copy(path, plus / path.parent.name / f"base-{path.name}")
    tuned = train_from_folders((), tmp_path / "t.safetensors", SMALL, eurosat=plus, eurosat_test_share=0.5,
                               init=base, device="cpu")
    report = evaluate_path(CnnCroplandModel.from_file(tmp_path / "t.safetensors", device="cpu"), plus)
    held_out = tuned.metrics["eurosat_test"]
    assert held_out["overall"] == report["overall"] and held_out["overall"]["n"] < 12
    assert held_out["note"] == (f"{12 - held_out['overall']['n']} of the 12 held-out patches left out: the weights "
                                "trained on them (matched by their band values)")


def test_a_fine_tune_whose_starting_weights_trained_on_every_held_out_patch_warns_so_not_to_hold_some_out(
        tiny_eurosat, tmp_path: Path) -> None:
    """Every held-out patch one the starting weights trained on: the card had no metrics and the warning told the user
    to give --eurosat with --eurosat-test-share, which they had."""
    from farmcredit.segmentation.data import eurosat_files

    base = tmp_path / "base.safetensors"
    base_card = train_from_folders((), base, SMALL, eurosat=tiny_eurosat, eurosat_test_share=0.5, device="cpu")
    seen = tmp_path / "seen"
    files = [path for path, _ in eurosat_files(tiny_eurosat)]
    for path, sha in zip(files, load_eurosat(tiny_eurosat).patch_sha256, strict=True):
        if sha in base_card.training["eurosat_trained_sha256"]:  # two of each class
            (seen / path.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, seen / path.parent.name / path.name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tuned = train_from_folders((), tmp_path / "t.safetensors", SMALL, eurosat=seen, eurosat_test_share=0.5,
                                   init=base, device="cpu")
    said = [str(w.message) for w in caught]
    assert tuned.training["eurosat_split"]["test_patches"] == 3 and tuned.metrics == {}
    assert said == ["t.json: the card holds no eurosat_test metric: the starting weights trained on all 3 held-out "
                    "EuroSAT patches (matched by their band values), so none is scored; give --eurosat patches they "
                    "did not train on"]


def test_evaluating_a_fine_tune_on_its_base_models_scene_says_it_trained_on_it(small_season, tiny_eurosat,
                                                                              tmp_path: Path) -> None:
    from farmcredit.segmentation.cnn import CnnCroplandModel
    from farmcredit.segmentation.metrics import evaluate_path

    base = tmp_path / "base.safetensors"
    train_from_folders((small_season.root,), base, SMALL, device="cpu")
    tuned = tmp_path / "tuned.safetensors"
    train_from_folders((), tuned, SMALL, eurosat=tiny_eurosat, init=base, device="cpu")
    report = evaluate_path(CnnCroplandModel.from_file(tuned, device="cpu"), small_season.root)
    assert report["note"] == "the model trained on this scene: not a held-out score"
    # The same imagery in another folder is known by its hash, not its path.
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "imagery").symlink_to(small_season.imagery_dir)
    (tmp_path / "copy" / "landcover.tif").write_bytes((small_season.root / "landcover.tif").read_bytes())
    copied = evaluate_path(CnnCroplandModel.from_file(tuned, device="cpu"), tmp_path / "copy")
    assert copied["note"] == "the model trained on this scene: not a held-out score"
    # And new imagery simulated into a folder of that name is new data.
    from farmcredit.simulate import SimulationSpec, simulate_season

    anew = simulate_season(tmp_path / "anew", seed=4, spec=SimulationSpec(size_px=48, n_dates=4))
    train_from_folders((anew.root,), tmp_path / "anew.safetensors", SMALL, device="cpu")
    simulate_season(anew.root, seed=5, spec=SimulationSpec(size_px=48, n_dates=4))
    fresh = evaluate_path(CnnCroplandModel.from_file(tmp_path / "anew.safetensors", device="cpu"), anew.root)
    assert "note" not in fresh


def test_the_shipped_card_names_the_imagery_of_each_simulated_scene_it_trained_on() -> None:
    training = read_card(DEFAULT_WEIGHTS).training
    hashes = training["scene_imagery_sha256"]
    assert len(hashes) == len(training["simulated_scenes"]["seeds"]) == 4
    assert all(re.fullmatch(r"[0-9a-f]{64}", sha) for sha in hashes) and len(set(hashes)) == 4


@pytest.mark.slow
def test_evaluating_the_shipped_model_on_a_scene_it_trained_on_says_so(tmp_path: Path) -> None:
    from farmcredit.segmentation.cnn import CnnCroplandModel
    from farmcredit.segmentation.metrics import evaluate_path
    from farmcredit.simulate import SimulationSpec, simulate_season

    simulated = read_card(DEFAULT_WEIGHTS).training["simulated_scenes"]  # regenerated as its card says
    folder = simulate_season(tmp_path / "sim", seed=simulated["seeds"][0],
                             spec=replace(SimulationSpec(), size_px=simulated["size_px"])).root
    report = evaluate_path(CnnCroplandModel.from_file(DEFAULT_WEIGHTS, device="cpu"), folder)
    assert report["note"] == "the model trained on this scene: not a held-out score"


def test_train_init_takes_the_shipped_model_by_name_as_evaluate_does(small_season, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from farmcredit.cli import cli

    out = tmp_path / "tuned.safetensors"
    tuned = CliRunner().invoke(cli, ["train", str(small_season.root), "--init", "cnn", "--out", str(out),
                                     "--steps", "1", "--device", "cpu"])
    assert tuned.exit_code == 0, tuned.output
    shipped, training = read_card(DEFAULT_WEIGHTS), read_card(out).training
    # The starting weights' lineage, not their path alone: what they were and what they learnt from.
    assert training["init"] == {"path": str(DEFAULT_WEIGHTS), "name": shipped.name,
                                "architecture": shipped.architecture, "weights_sha256": shipped.weights_sha256,
                                "data_sha256": shipped.training["data_sha256"], "init": shipped.training["init"]}
    # This run read scenes alone, yet its weights carry what the shipped ones learnt from EuroSAT and DEA.
    assert training["data_licences"] == shipped.training["data_licences"]
    missing = tmp_path / "none.safetensors"
    for name, message in (("rule", "the phenology rule ('rule') has no weights"),
                          (str(missing), f"{missing}: starting weights (--init) not found")):
        refused = CliRunner().invoke(cli, ["train", str(small_season.root), "--init", name, "--out",
                                           str(tmp_path / "x.safetensors"), "--steps", "1", "--device", "cpu"])
        assert isinstance(refused.exception, InputError) and message in str(refused.exception)


def test_labels_without_crop_types_train_a_crop_class_not_untrained_type_names() -> None:
    from farmcredit.segmentation.card import MODEL_BANDS
    from farmcredit.segmentation.cnn import CnnCroplandModel
    from farmcredit.segmentation.metrics import evaluate_scene

    scene = scene_in_memory(40, 40)  # 0/1 cover, no crop type
    net, card, _ = train(TrainingData([scene]), SMALL, device="cpu")
    assert card.classes == ("non_crop", "crop") and net.head.out_channels == 2
    classes = CnnCroplandModel(net, card, device="cpu").predict(scene.reflectance, scene.clear, MODEL_BANDS).crop_class
    assert set(np.unique(classes)) <= {-1, 0, 1}
    typed = replace(scene, crop_type=np.where(scene.crop_cover == 1, 2, 0).astype(np.int8))  # all maize
    assert train(TrainingData([typed]), SMALL, device="cpu")[1].classes == CLASSES
    assert "crop_types" not in evaluate_scene(CnnCroplandModel(net, card, device="cpu"), typed)  # it names no types


def test_a_model_with_one_crop_class_fine_tunes_on_crop_typed_scenes_as_crop_and_non_crop() -> None:
    from farmcredit.segmentation.cnn import CnnCroplandModel

    scene = scene_in_memory(40, 40)
    net, card, _ = train(TrainingData([scene]), SMALL, device="cpu")  # no crop types: non_crop, crop
    rice = replace(scene, crop_type=np.where(scene.crop_cover == 1, 3, 0).astype(np.int8))  # as simulated scenes
    tuned, tuned_card, losses = train(TrainingData([rice]), SMALL, device="cpu",
                                      init=CnnCroplandModel(net, card, device="cpu"))
    assert tuned_card.classes == ("non_crop", "crop") and tuned.head.out_channels == 2
    assert np.isfinite(losses).all() and min(losses) > 0  # the crop/non-crop loss still teaches


def test_training_on_cuda_runs_deterministic_kernels_and_puts_the_settings_back() -> None:
    from farmcredit.segmentation.training import _deterministic

    def settings() -> tuple[bool, bool, bool, bool]:
        return (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
                torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())

    before = settings()
    with _deterministic(torch.device("cpu")):
        assert settings() == before  # the CPU's kernels are deterministic: nothing to set
    torch.backends.cudnn.benchmark = True  # a caller's own choice, to be restored
    try:
        with pytest.raises(RuntimeError, match="a failing step"), _deterministic(torch.device("cuda")):
            assert settings() == (True, False, True, True)  # the flags alone: no GPU is needed to set them
            raise RuntimeError("a failing step")
        assert settings() == (before[0], True, *before[2:])
    finally:
        torch.backends.cudnn.benchmark = before[1]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_weights_and_checkpoints_are_written_readable_as_the_umask_allows(tmp_path: Path, umask, mode) -> None:
    """safetensors' save_file wrote them 0600 whatever the umask, unreadable by another account (a service running
    assess) while the card beside them was 0644; retraining over such weights then kept them 0600."""
    import os

    weights, checkpoint = tmp_path / "m.safetensors", tmp_path / "ckpt.safetensors"
    weights.write_bytes(b"weights an older version wrote 0600: writing into them kept them 0600")
    weights.chmod(0o600)
    before = os.umask(umask)
    try:
        net, card, _ = train(TrainingData([scene_in_memory(40, 40)]), replace(SMALL, steps=1), device="cpu",
                             checkpoint=checkpoint)
        save_model(net, card, weights)
    finally:
        os.umask(before)
    assert {path.name: path.stat().st_mode & 0o777 for path in (weights, card_path(weights), checkpoint)} == {
        "m.safetensors": mode, "m.json": mode, "ckpt.safetensors": mode}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ckpt.safetensors", "m.json", "m.safetensors"]


def test_training_on_nothing_held_out_warns_that_the_card_has_no_metrics_and_how_to_get_some(small_season,
                                                                                            tmp_path: Path) -> None:
    """On the user's own labels alone the card's metrics were {} and nothing said so."""
    out = tmp_path / "mine.safetensors"
    with pytest.warns(UserWarning, match=r"mine\.json: the card holds no held-out metrics .* --eurosat-test-share, "
                                         r"or --dea .* `farmcredit evaluate .*mine\.safetensors SCENE`"):
        train_from_folders((small_season.root,), out, SMALL, device="cpu")
    assert read_card(out).metrics == {}


def test_a_card_names_the_licences_of_the_data_this_run_and_its_starting_weights_learnt_from(small_season,
                                                                                          tmp_path: Path) -> None:
    from farmcredit.segmentation.training import DATA_LICENCES

    out = tmp_path / "mine.safetensors"
    with pytest.warns(UserWarning, match="no held-out metrics"):
        train_from_folders((small_season.root,), out, SMALL, device="cpu")
    assert read_card(out).training["data_licences"] == {"imagery": DATA_LICENCES["imagery"]}
    assert read_card(out).training["init"] is None


def test_a_fine_tune_of_a_fine_tune_keeps_its_lineage_back_to_the_weights_trained_from_scratch(
        tmp_path: Path) -> None:
    """training.init named the immediate starting weights alone: base -> ft1 -> ft2 left base out of ft2's card."""
    from farmcredit.segmentation.card import ARCHITECTURE
    from farmcredit.segmentation.cnn import CnnCroplandModel

    data, one_step = TrainingData([scene_in_memory(40, 40)]), replace(SMALL, steps=1)
    net, card, _ = train(data, one_step, device="cpu")
    base = CnnCroplandModel(net, replace(card, name="base", weights_sha256="b" * 64), device="cpu")
    net, card, _ = train(data, one_step, device="cpu", init=base)
    assert "init" not in card.training["init"]  # base trained from scratch: nothing before it
    first = CnnCroplandModel(net, replace(card, name="ft1", weights_sha256="1" * 64), device="cpu")
    net, card, _ = train(data, one_step, device="cpu", init=first)
    save_model(net, replace(card, name="ft2"), tmp_path / "ft2.safetensors")
    data_sha256 = card.training["data_sha256"]  # each trained on the same scene
    assert read_card(tmp_path / "ft2.safetensors").training["init"] == {
        "name": "ft1", "architecture": ARCHITECTURE, "weights_sha256": "1" * 64, "data_sha256": data_sha256,
        "init": {"name": "base", "architecture": ARCHITECTURE, "weights_sha256": "b" * 64, "data_sha256": data_sha256}}
