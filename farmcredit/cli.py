"""The ``farmcredit`` command line: a thin click layer over the library, one command each."""

from __future__ import annotations

import logging
import math
import os
import re
import signal
import sys
import time
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from farmcredit.errors import FarmcreditError, InputError, Terminated, terminate

if TYPE_CHECKING:
    import geopandas as gpd

    from farmcredit.imagery.fetch import RemoteSource
    from farmcredit.pipeline import Assessment

USAGE_ERROR = 2
INTERRUPTED = 130  # as a shell reports a command stopped by Ctrl-C (128 + SIGINT)
TERMINATED = 143  # 128 + SIGTERM, what Kubernetes, Airflow and `docker stop` send
BANDS_HELP = "Band layout of a multi-band GeoTIFF without band descriptions: DATE:BAND,...;DATE:BAND,... in band order"
PARTITIONS_FAILED = 3
WRITING_OUTPUTS = "writing outputs"
bands_option = click.option("--bands", help=f"{BANDS_HELP}.")
parcels_crs_option = click.option("--parcels-crs", help="CRS to assume when the parcel file declares none, e.g. "
                                                        "EPSG:4326.")
parcels_datum_option = click.option(
    "--parcels-datum", type=click.Choice(["wgs84", "gcj02", "bd09"]), default="wgs84", show_default=True,
    help="How the parcels' longitude and latitude were drawn, for parcels in mainland China: wgs84 (GPS or 北斗, "
         "a survey, most GIS, 天地图 Tianditu), gcj02 (on 高德地图 Amap / Gaode or 腾讯地图 Tencent, or Google Maps "
         "in China) or bd09 (on 百度地图 Baidu); those lie hundreds of metres off the imagery (GCJ-02 some 100-700 m, "
         "BD-09 up to 1.5 km), and are moved back to WGS 84 before anything is read. Not for parcels outside "
         "mainland China: the formulas move positions in Korea, western Japan, India and South-East Asia too, where "
         "those maps show WGS 84.")
parcels_layer_option = click.option("--parcels-layer", help="Layer to read from a parcel file of several (GeoPackage, "
                                                            "KML); default: its one layer with parcel_id and polygons.")
dn_offset_option = click.option(
    "--dn-offset", type=float, callback=lambda _, param, value: _finite(param, value),
    help="Offset of an integer GeoTIFF stack's DNs, or of scene folders without a STAC item: reflectance = "
         "(DN + offset) / 10000; -1000 for L2A of processing baseline 04.00+ whose offset was not applied. "
         "[default: 0; STAC items and SAFE products carry their own]")
device_option = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                             help="Where the cropland CNN runs: a CUDA GPU when torch sees one, else the CPU (auto), "
                                  "the CPU (cpu) or a CUDA GPU, refused when there is none (cuda).")
# Long lines are not cut into the log: a path broken at 80 columns cannot be found or pasted.
console = Console(stderr=True, soft_wrap=True)


def _finite(param: click.Parameter, value: float | None) -> float | None:
    """``value`` when a finite number (or not given): nan or inf offsets would make every pixel no data."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number", param=param)
    return value


class UserPath(click.Path):
    """``click.Path`` with a leading ``~`` taken as the home folder, and a path the system cannot look up (a name too
    long, a loop of symbolic links: ``locking.looked_up``) refused. A shell leaves ``--out=~/x``, a quoted ``'~/x'`` or
    a scheduler's argument as it is: pandas writers would expand it, GDAL and sqlite not, splitting a run's outputs
    between ``./~/x`` and ``$HOME/x``."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """``value`` expanded and looked up, then as ``click.Path`` converts it."""
        if isinstance(value, str | Path):
            value = _looked_up(os.path.expanduser(value), param, ctx)
        return super().convert(value, param, ctx)


def _looked_up(value: str, param: click.Parameter | None, ctx: click.Context | None) -> str:
    """``value``, a path the system can look up; else a usage error naming it and why (``locking.looked_up``)."""
    from farmcredit.locking import looked_up

    try:
        looked_up(Path(value), "path")
    except InputError as exc:
        raise click.BadParameter(str(exc), ctx, param) from exc
    return value


def _imagery_source(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """``--imagery`` as a path as ``UserPath`` takes it, unless a remote source's name or URL."""
    return value if "://" in value else _looked_up(os.path.expanduser(value), param, ctx)


def _out_path(_: click.Context, param: click.Parameter, value: str | Path | None) -> Path | None:
    """``--out`` as a path; an empty one is refused (as a path, "" is the current folder: written in unasked)."""
    if value == "":
        raise click.BadParameter("an empty path names no file or folder; name the one to write", param=param)
    return None if value is None else Path(value)


def parse_season(text: str | None, one_season: bool = True) -> tuple[date, date] | None:
    """Parse ``START/END`` (ISO dates) into a date pair (``dates.as_season``: at most a year long, unless not
    ``one_season``); ``None`` passes through."""
    from farmcredit.dates import MAX_SEASON_DAYS, as_season

    try:
        return as_season(text, MAX_SEASON_DAYS if one_season else None)
    except FarmcreditError as exc:
        raise click.BadParameter(str(exc), param_hint="--season") from exc


def parse_band_layout(text: str | None) -> list[tuple[date | None, str]] | None:
    """Parse ``DATE:BAND,BAND;DATE:BAND,...`` (one entry per stack band, in order)."""
    from farmcredit.dates import iso_date

    if text is None:
        return None
    layout: list[tuple[date | None, str]] = []
    try:
        for group in text.split(";"):
            when, _, bands = group.rpartition(":")
            day = iso_date(when) if when.strip() else None
            names = [band.strip().upper() for band in bands.split(",")]
            if not all(names):  # a stray ';' or ',' would otherwise count as a band
                raise ValueError("an empty band name")
            layout += [(day, name) for name in names]
    except ValueError as exc:
        example = "2021-06-17:B04,B03,B02,B08;2021-09-25:B04,B03,B02,B08"
        raise click.BadParameter(f"{text!r} is not DATE:BAND,...;DATE:BAND,..., e.g. {example}") from exc
    return layout


def _show_version(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    """``--version``: the code version run.json and model cards record (``version.card_code_version``: the release, its
    source hash and git commit), not the release alone, which every edit of the code shares. Imported only when asked:
    the audit module loads pandas and geopandas, which every other command's start would pay."""
    if not value or ctx.resilient_parsing:
        return
    from farmcredit.version import card_code_version

    click.echo(f"farmcredit, version {card_code_version()}")
    ctx.exit()


@click.group()
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
              help="Show the version (release, source hash and git commit, as model cards record it) and exit.")
def cli() -> None:
    """farmcredit: Sentinel-2 imagery over farmers' parcels to explainable loan limits."""


@cli.command()
@click.argument("parcels", type=UserPath(path_type=Path))
@click.option("--imagery", "imagery_src", required=True, callback=_imagery_source,
              help="Imagery folder (Earth Search layout, SAFE products), a SAFE .zip, a multi-band GeoTIFF, "
              "or a remote source fetched into OUT/imagery first: stac (Earth Search), "
              "stac://HOST/PATH?collection=ID, an https STAC API URL, or sentinelhub (needs --season).")
@click.option("--season", help="START/END in ISO dates, at most a year; default: every date in the imagery.")
@click.option("--out", type=UserPath(), callback=_out_path, default=Path("farmcredit-results"), show_default=True,
              help="Output folder.")
@click.option("--config", "config_path", type=UserPath(path_type=Path), help="YAML config (default: packaged).")
@parcels_crs_option
@parcels_datum_option
@parcels_layer_option
@bands_option
@dn_offset_option
@click.option("--risk-model", type=UserPath(path_type=Path),
              help="Risk model JSON from `farmcredit credit fit` (default: the shipped synthetic one).")
@click.option("--model", "cropland_model", default=None,
              help="Cropland model: 'cnn' (default, the shipped CNN), 'rule' (v1 phenology rule, far cheaper on a "
                   "CPU: see the README) or a .safetensors file with its card.")
@device_option
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
def assess(parcels: Path, imagery_src: str, season: str | None, out: Path, config_path: Path | None,
           parcels_crs: str | None, parcels_datum: str, parcels_layer: str | None, bands: str | None,
           dn_offset: float | None,
           risk_model: Path | None, cropland_model: str | None, device: str, quiet: bool) -> None:
    """Assess PARCELS against a season of Sentinel-2 imagery and write results to --out.

    \b
    Examples:
      farmcredit assess sample_tiles/parcels.geojson --imagery sample_tiles/imagery --out results
      farmcredit assess fields.gpkg --imagery S2/ --season 2024-03-01/2024-10-31 --config my-region.yaml
      farmcredit assess fields.shp --parcels-crs EPSG:4326 --imagery stack.tif --bands 2021-06-17:B04,B03,B02,B08
    """
    from farmcredit.config import load_config
    from farmcredit.imagery import open_imagery
    from farmcredit.locking import RESULTS_LOCK, first_missing, remove_if_untouched, results_lock
    from farmcredit.outputs import output_folder, write_outputs
    from farmcredit.pipeline import run_assessment, warn_batch_partitions, warn_of_findings, warn_of_model
    from farmcredit.segmentation import load_cropland_model

    # Before the run: an --out that cannot be a folder, or where it would overwrite an input, fails now, not after it.
    output_folder(out, create=False, inputs={"parcels": parcels, "--config": config_path, "--risk-model": risk_model})
    config = load_config(config_path)
    model = load_cropland_model(cropland_model, config.cropland_rule, device)
    warn_of_model(model)
    window = parse_season(season)
    made = first_missing(out)  # the first folder this run makes
    try:
        with results_lock(out):  # one run at a time in a folder, from its imagery to its last output
            imagery_src = _local_imagery(imagery_src, parcels, window, (parcels_crs, parcels_layer, parcels_datum), out,
                                         quiet)
            imagery = open_imagery(imagery_src, window, band_layout=parse_band_layout(bands), dn_offset=dn_offset,
                                   fetch_parcels=_fetch_parcels(parcels, (parcels_crs, parcels_layer, parcels_datum)))
            warn_batch_partitions(out)
            progress = _progress(quiet)
            with _stages(progress, quiet) as stage:
                task = progress.add_task("reading imagery windows", total=None)
                result = run_assessment(
                    parcels, imagery, season=window, config=config, parcels_crs=parcels_crs,
                    parcels_datum=parcels_datum, parcels_layer=parcels_layer, risk_model=risk_model, model=model,
                    pixel_layers=True,
                    progress=lambda done, total: progress.update(task, completed=done, total=total), stage=stage,
                )
                stage(WRITING_OUTPUTS)
                files = write_outputs(out, result)
    except BaseException:
        if made is not None:  # stopped before writing (its input, a crash): leave no folder holding only a lock
            remove_if_untouched(made, out / RESULTS_LOCK)
        raise
    if not quiet:
        console.print(_decision_summary(result))
        if season := _season_summary(result):
            console.print(season, markup=False)
        names = (p.name for p in files.values() if p.suffix != ".qml")  # each raster's .qml lies beside it
        console.print(f"results written to {out.resolve()}: " + ", ".join(names), markup=False)
    warn_of_findings(result)


@cli.command(epilog="Exit codes: 0 every partition done; 2 a usage error or an unreadable input; "
             "3 finished, but some partitions failed (their parcels carry MEASUREMENT_FAILED; rerun to retry them).")
@click.argument("parcels", type=UserPath(path_type=Path))
@click.option("--imagery", "imagery_src", required=True, callback=_imagery_source,
              help="Imagery folder, SAFE products or stack, as for assess (local: every worker must see it).")
@click.option("--season", help="START/END in ISO dates, at most a year; default: every date in the imagery.")
@click.option("--out", type=UserPath(), callback=_out_path, required=True,
              help="Output folder: the outputs of assess plus partitions/ (a GeoParquet dataset, _manifest.json).")
@click.option("--config", "config_path", type=UserPath(path_type=Path), help="YAML config (default: packaged).")
@parcels_crs_option
@parcels_datum_option
@parcels_layer_option
@bands_option
@dn_offset_option
@click.option("--risk-model", type=UserPath(path_type=Path), help="Risk model JSON from `farmcredit credit fit`.")
@click.option("--model", "cropland_model", default=None,
              help="Cropland model: 'cnn' (default), 'rule' or a .safetensors file.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="The CNN runs on the cluster's GPU workers (Dask resource GPU) when it has any (auto), "
                   "must (cuda) or never does (cpu).")
@click.option("--scheduler", help="Existing Dask scheduler, tcp://HOST:PORT [default: a local cluster].")
@click.option("--workers", type=click.IntRange(min=1), help="Local cluster CPU workers [default: one per core].")
@click.option("--gpu-workers", type=click.IntRange(min=0),
              help="Local cluster GPU workers, which run the CNN for the others "
                   "[default: one per CUDA device for the CNN unless --device cpu, else 0].")
@click.option("--memory-limit", callback=lambda _, __, v: None if v is None else _memory_limit(v),
              help="Memory per local worker, e.g. 4GiB or 0.5 of the machine's (auto, the default: the machine's "
                   "memory shared among the workers; 0: no limit).")
@click.option("--partition-parcels", type=click.IntRange(min=1), default=5000, show_default=True,
              help="About how many parcels one task measures (whole imagery windows).")
@click.option("--retries", type=click.IntRange(0, 10), default=2, show_default=True,
              help="Further attempts of a partition that failed before it is recorded failed.")
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
def batch(parcels: Path, imagery_src: str, season: str | None, out: Path, config_path: Path | None,
          parcels_crs: str | None, parcels_datum: str, parcels_layer: str | None, bands: str | None,
          dn_offset: float | None,
          risk_model: Path | None, cropland_model: str | None, device: str,
          scheduler: str | None, workers: int | None, gpu_workers: int | None, memory_limit: str | None,
          partition_parcels: int, retries: int, quiet: bool) -> None:
    """Assess a portfolio on a Dask cluster, resumably; the outputs equal assess's row for row.

    Parcels are split into partitions of whole imagery windows; workers measure them and write
    each partition's file atomically, then the portfolio-wide stages run here. Rerun the same
    command after a crash or kill: only the partitions not yet written (with their manifest entry)
    are measured.

    \b
    Examples:
      farmcredit batch portfolio.parquet --imagery S2/ --out results/2024
      farmcredit batch portfolio.parquet --imagery /shared/S2 --out /shared/results --scheduler tcp://10.0.0.5:8786
      farmcredit batch fields.gpkg --imagery stack.tif --bands 2021-06-17:B04,B03,B02,B08 --out results/2021
    """
    from farmcredit.batch import run_batch
    from farmcredit.batch.partitions import MANIFEST
    from farmcredit.batch.placement import local_gpu_count, uses_gpu
    from farmcredit.batch.runner import LOCK_NAME, exclusive, partitions_folder
    from farmcredit.config import load_config
    from farmcredit.imagery import open_imagery
    from farmcredit.locking import RESULTS_LOCK, first_missing, remove_if_untouched, results_lock
    from farmcredit.outputs import output_folder, write_outputs
    from farmcredit.segmentation import load_cropland_model

    reading = _fetch_parcels(parcels, (parcels_crs, parcels_layer, parcels_datum))
    window = parse_season(season)
    if remote := _remote_source(imagery_src):
        from farmcredit.imagery.fetch import public_url
        from farmcredit.pipeline import _command_line, fetch_source_words

        fetch = _command_line(["--season", "/".join(map(str, window)) if window else "START/END",
                               *fetch_source_words(remote), "--out", "DIR"])
        raise click.UsageError(f"--imagery {public_url(imagery_src)}: batch reads imagery its workers open as files; "
                               f"fetch it into a folder first (farmcredit fetch {reading} {fetch}) and give --imagery "
                               "DIR")
    output_folder(out, create=False, inputs={"parcels": parcels, "--config": config_path, "--risk-model": risk_model})
    config = load_config(config_path)
    # The driver never runs the model: each worker puts it on its own device.
    model = load_cropland_model(cropland_model, config.cropland_rule, "cpu")
    if scheduler and (workers or gpu_workers or memory_limit):
        raise click.UsageError("--workers, --gpu-workers and --memory-limit size a local cluster; with --scheduler, "
                               "start the workers yourself (dask worker ... --memory-limit 4GiB [--resources GPU=1])")
    devices = local_gpu_count(model)
    if gpu_workers is None:
        gpu_workers = 0 if device == "cpu" or scheduler else devices
    elif gpu_workers > devices and uses_gpu(model) and device != "cuda":  # with cuda, run_batch refuses
        console.print(f"[yellow]warning:[/] {gpu_workers} GPU workers but {devices} CUDA devices here: "
                      "the extra workers run the CNN on their CPU", highlight=False)
    # Absolute paths: workers of a --scheduler cluster may run in another folder.
    imagery = open_imagery(Path(imagery_src).absolute(), window, band_layout=parse_band_layout(bands),
                           dn_offset=dn_offset, fetch_parcels=reading)
    columns = (TextColumn("{task.description}"), BarColumn(), _CountColumn("parcels"),
               TextColumn("{task.fields[rate]:,.0f} parcels/s"), TimeRemainingColumn())
    progress = Progress(*columns, console=console, disable=quiet, transient=True)
    with _stages(progress, quiet) as stage:
        task = progress.add_task("reading parcels", total=None, rate=0.0)  # until the partitions are planned
        start: dict[str, float] = {}

        def update(done: int, total: int) -> None:
            # The rate counts this run's parcels only: partitions reused from a killed run cost nothing.
            start.setdefault("time", time.perf_counter())
            start.setdefault("done", done)
            rate = (done - start["done"]) / max(time.perf_counter() - start["time"], 1e-9)
            progress.update(task, description="measuring partitions", completed=done, total=total, rate=rate)

        made = first_missing(out / "partitions")  # the first folder this run makes
        try:
            # One batch at a time in a folder, nor an assess, from its measuring to its last output.
            with results_lock(out), exclusive(partitions_folder(out)):
                result = run_batch(
                    parcels, imagery, out, model=model, season=window, config=config, parcels_crs=parcels_crs,
                    parcels_datum=parcels_datum, parcels_layer=parcels_layer, risk_model=risk_model,
                    scheduler=scheduler, workers=workers,
                    memory_limit=memory_limit or "auto", parcels_per_partition=partition_parcels, retries=retries,
                    gpu_workers=gpu_workers, device=device, progress=update, stage=stage,
                )
                stage(WRITING_OUTPUTS)
                write_outputs(out, result.assessment)
        except BaseException:
            if made is not None:  # stopped before measuring (its input, a crash): leave no folder holding only a lock
                remove_if_untouched(made, out / "partitions" / LOCK_NAME, out / RESULTS_LOCK)
            raise
    if not quiet:
        console.print(_decision_summary(result.assessment))
        if season := _season_summary(result.assessment):
            console.print(season, markup=False)
        console.print(f"{len(result.assessment.parcels)} parcels in {result.partitions} partitions "
                      f"({result.reused} reused from an earlier run, {len(result.failed)} failed); "
                      f"results written to {out.resolve()}", markup=False)
    if result.failed:
        reasons = Counter(_reason_kind(reason) for reason in result.failed.values())
        manifest = out / "partitions" / MANIFEST
        console.print(f"[bold red]{len(result.failed)} partitions failed[/] (see {_shown(str(manifest))}): "
                      + _shown("; ".join(f"{n} x {reason}" for reason, n in reasons.most_common())), highlight=False)
        sys.exit(PARTITIONS_FAILED)


@cli.command()
@click.argument("results", type=UserPath(exists=True, path_type=Path))
@click.option("--parcel", "parcel_id", help="Centre on this parcel and plot its NDVI season against its peers'.")
@click.option("--out", type=UserPath(), callback=_out_path,
              help="PNG to write [default: RESULTS/preview.png, or RESULTS/preview_<ID>.png with --parcel].")
def preview(results: Path, parcel_id: str | None, out: Path | None) -> None:
    """Draw a map of a results folder: parcels by decision over the season's imagery.

    \b
    Examples:
      farmcredit preview results/sample
      farmcredit preview results/sample --parcel P00003 --out p3.png
    """
    from farmcredit.outputs import render_preview

    console.print(f"wrote {render_preview(results, out, parcel_id)}", markup=False)


@cli.command()
@click.argument("parcels", required=False, type=UserPath(path_type=Path))
@click.option("--bbox", help="W,S,E,N in degrees: fetch this box instead of PARCELS.")
@click.option("--season", required=True, help="START/END in ISO dates, e.g. 2024-03-01/2024-10-31 (several seasons "
                                               "may be fetched at once: assess each with its own --season).")
@click.option("--source", type=click.Choice(["stac", "sentinelhub"]), default="stac", show_default=True,
              help="stac: a STAC API with COG assets (no credentials); sentinelhub: Copernicus Data Space "
              "(SH_CLIENT_ID / SH_CLIENT_SECRET or a sentinelhub config profile).")
@click.option("--stac-url", default="https://earth-search.aws.element84.com/v1", show_default=True,
              help="STAC API root (with --source stac).")
@click.option("--collection", default="sentinel-2-l2a", show_default=True, help="STAC collection id.")
@click.option("--out", type=UserPath(), callback=_out_path, required=True, help="Imagery folder to write.")
@click.option("--max-cloud", type=click.FloatRange(0, 100), default=50.0, show_default=True,
              help="Leave out scenes with more cloud cover than this, percent.")
@click.option("--bands", "band_list", help="Comma-separated bands [default: B02-B08, B8A, B11, B12, SCL]; SCL is the "
                                           "cloud mask: without it clouds are read as clear.")
@parcels_crs_option
@parcels_datum_option
@parcels_layer_option
@click.option("--timeout", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds one HTTP request may take: each wait for its answer, and each 64 KiB of its body after.")
@click.option("--retries", type=click.IntRange(0, 10), default=3, show_default=True,
              help="Retries of a request after a 429, a 5xx or a timeout.")
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
def fetch(parcels: Path | None, bbox: str | None, season: str, source: str, stac_url: str, collection: str,
          out: Path, max_cloud: float, band_list: str | None, parcels_crs: str | None, parcels_datum: str,
          parcels_layer: str | None, timeout: float, retries: int, quiet: bool) -> None:
    """Download the season's Sentinel-2 L2A over PARCELS (or --bbox) into --out, only the windows needed.

    --out becomes an imagery folder `assess --imagery` reads (one folder per scene, per-band
    GeoTIFFs, a STAC item), with manifest.json saying what was fetched. A rerun downloads only
    what is missing.

    \b
    Examples:
      farmcredit fetch fields.gpkg --season 2024-03-01/2024-10-31 --out s2/
      farmcredit fetch --bbox 116.30,39.90,116.35,39.94 --season 2024-03-01/2024-10-31 --source sentinelhub --out s2/
      farmcredit assess fields.gpkg --imagery s2/ --season 2024-03-01/2024-10-31
    """
    from farmcredit.imagery.fetch import FETCH_BANDS, HttpSettings, RemoteSource, area_from_bbox

    if (parcels is None) == (bbox is None):
        raise click.UsageError("give either PARCELS or --bbox W,S,E,N")
    reading = (parcels_crs, parcels_layer, parcels_datum)
    area = area_from_bbox(bbox) if bbox is not None else _parcel_area(parcels, reading)
    remote = RemoteSource("stac", stac_url, collection) if source == "stac" else RemoteSource("sentinelhub")
    bands = tuple(band_list.split(",")) if band_list else FETCH_BANDS
    http = HttpSettings(timeout_s=timeout, attempts=retries + 1)
    # A folder may hold several seasons, each assessed with its own --season.
    window = parse_season(season, one_season=False)
    _fetch(area, window, remote, out, max_cloud=max_cloud, bands=bands, http=http, quiet=quiet)


@cli.command("config")
@click.option("--out", type=UserPath(dir_okay=False), callback=_out_path,
              help="File to write it to (UTF-8; refused if it exists) [default: standard output, as UTF-8].")
def print_config(out: Path | None) -> None:
    """Print the packaged default configuration (YAML, with the sources of its values) to copy and edit for --config.

    It is UTF-8 whatever the console's code page (it names crops in Chinese), as --config reads it; on Windows,
    prefer --out to `>`, which PowerShell 5 writes as UTF-16.

    \b
    Example:
      farmcredit config --out region.yaml
      farmcredit assess parcels.geojson --imagery imagery --config region.yaml
    """
    from farmcredit.config import packaged_config_text

    text = packaged_config_text().encode("utf-8")
    if out is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(text)
        return
    try:
        with out.open("xb") as file:
            file.write(text)
    except FileExistsError as exc:
        raise InputError(f"{out} exists: remove it or name another file (it may be a config you edited)") from exc
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror}") from exc
    console.print(f"wrote {out}", markup=False)


@cli.command()
@click.option("--out", type=UserPath(), callback=_out_path, required=True, help="Folder to write the season into.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Random seed (same seed, same bytes).")
@click.option("--size", "size_px", type=click.IntRange(48, 4096), default=320, show_default=True,
              help="Scene size in 10 m pixels per side (sample_tiles: 320).")
def simulate(out: Path, seed: int, size_px: int) -> None:
    """Write a synthetic Sentinel-2 L2A season with exact ground truth.

    \b
    Example:
      farmcredit simulate --out sample_tiles --seed 42
    """
    from dataclasses import replace

    from farmcredit.simulate import SimulationSpec, simulate_season

    spec = replace(SimulationSpec(), size_px=size_px)
    result = simulate_season(out, seed=seed, spec=spec)
    console.print(
        f"wrote {result.n_parcels} parcels and {len(result.dates)} dates to {result.root.resolve()} "
        f"(imagery {result.imagery_dir.name}/, {result.parcels_path.name}, {result.truth_path.name})", markup=False
    )


@cli.command()
@click.argument("data", nargs=-1, type=UserPath(exists=True, path_type=Path))
@click.option("--out", type=UserPath(), callback=_out_path, required=True,
              help="Weights file to write (.safetensors).")
@click.option("--eurosat", type=UserPath(exists=True, path_type=Path), help="EuroSAT-MS folder (<Class>/*.tif).")
@click.option("--bands", help=f"{BANDS_HELP} (a stack DATA/imagery.tif).")
@click.option("--eurosat-test-share", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Share of each EuroSAT class held out of training (seeded split, recorded in the card); "
                   "`evaluate` then scores only those patches. With --init, kept when the starting weights trained "
                   "on other EuroSAT files (held-out patches they trained on are left out of the card's scores, a "
                   "note says how many; a card listing no such patches: a warning says they may overlap) or split "
                   "these the same way; else dropped, with a warning.")
@click.option("--dea", type=UserPath(exists=True, path_type=Path),
              help="Digital Earth Africa crop-mask folder of regions (<region>/training_data.txt), or one region's "
                   "folder (training_data.txt).")
@click.option("--dea-regions", default="",
              help="DEA regions to train on, comma-separated; the folder's others that the --init weights did not "
                   "train on either are scored into the card. [default: central,eastern,sahel,south_eastern (as "
                   "the shipped model) where the folder holds them all, else every region it holds]")
@click.option("--init", "init_weights",
              help="Fine-tune these weights instead of starting afresh: 'cnn' (the shipped model) or a .safetensors "
                   "file. Their calibration is dropped: calibrate the result (farmcredit calibrate).")
@click.option("--steps", type=click.IntRange(min=1), default=1500, show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--atmosphere", type=click.FloatRange(0, 1),
              help="Share of chips, patches and pixels given a random atmosphere (haze, band gains), so the "
                   "model cares less whether it reads L1C or L2A; 0 trains on the reflectance as read. "
                   "[default: 0.25]")
@click.option("--dea-crop-share", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Share of crop among the DEA pixels drawn per step (0.5: balanced). "
                   "[default: the labels' own share, which the model learns as its prior]")
@click.option("--dea-b8a-fill", type=click.FloatRange(0, 1),
              help="Share of DEA pixel batches given B8A (as B08 times a random gain 0.95-1.10; DEA has none), so "
                   "the model learns DEA's bare land also from all-band input, where other data (scenes, EuroSAT, "
                   "--init weights) teach it B8A; 0 as before v2.6. [default: 0.5]")
@device_option
@click.option("--checkpoint", type=UserPath(path_type=Path), help="Checkpoint file: saved to, resumed from.")
@dn_offset_option
def train(data: tuple[Path, ...], out: Path, bands: str | None, eurosat: Path | None, eurosat_test_share: float,
          dea: Path | None, dea_regions: str, init_weights: str | None, steps: int, seed: int,
          atmosphere: float | None, dea_crop_share: float | None, dea_b8a_fill: float | None, device: str,
          checkpoint: Path | None, dn_offset: float | None) -> None:
    """Train or fine-tune the cropland CNN on labelled scenes DATA, EuroSAT patches and/or DEA pixels.

    Each DATA folder is a simulate folder, or imagery/ (or a GeoTIFF stack imagery.tif, see --bands)
    with labels.tif on its grid (0 non-crop, 1 crop, its nodata value or masked-out pixels unknown) or
    labelled polygons labels.gpkg / .geojson / .parquet (column crop: 1 or 0).
    DATA may be left out when --eurosat or --dea is given.

    On two CPU cores a step of the example below takes 1.3-1.7 s after some 15 s of reading its data
    (500 steps: 11-15 minutes); --eurosat-test-share holds patches out, so the card (and train's output) gives
    held-out scores.

    \b
    Example:
      farmcredit simulate --out sim1 --seed 1
      farmcredit train sim1 --eurosat ../shared/data/labels/eurosat --eurosat-test-share 0.2 \\
        --out my-model.safetensors --steps 500
      farmcredit assess fields.gpkg --imagery S2/ --model my-model.safetensors
    """
    from farmcredit.segmentation.registry import cnn_weights
    from farmcredit.segmentation.training import TrainingConfig, train_from_folders

    if not (data or eurosat or dea):
        raise click.UsageError("nothing to train on: give labelled scene folders DATA, --eurosat or --dea")
    optional = {"atmosphere": atmosphere, "narrow_nir_fill": dea_b8a_fill}
    config = TrainingConfig(steps=steps, seed=seed, pixel_crop_share=dea_crop_share,
                            **{name: value for name, value in optional.items() if value is not None})
    with _progress(False, unit="steps") as progress, _warnings_on_console():
        task = progress.add_task("training", total=steps)
        card = train_from_folders(
            data, out, config, eurosat=eurosat, eurosat_test_share=eurosat_test_share,
            band_layout=parse_band_layout(bands), dn_offset=dn_offset, dea=dea,
            dea_regions=tuple(dea_regions.split(",")), init=cnn_weights(init_weights) if init_weights else None,
            device=device, checkpoint=checkpoint,
            progress=lambda step, total, loss: progress.update(task, completed=step,
                                                               description=f"loss {_loss_text(loss, 3)}"),
        )
    training = card.training
    console.print(f"wrote {out} and its card ({training['seconds']} s, final loss "
                  f"{_loss_text(training['final_loss'], 4)}); uncalibrated: fit its probabilities and area interval "
                  "with `farmcredit calibrate` on a labelled scene it did not train on", markup=False)
    # The scores on what training left out (held-out EuroSAT, unseen DEA regions) are results, as evaluate's report.
    for name, scores in card.metrics.items():
        overall = scores["overall"]
        click.echo(f"  {name}: n={overall['n']} accuracy={overall['accuracy']:.4f} F1={overall['f1']:.4f} "
                   f"(always the commoner class: {overall['majority_accuracy']:.4f})")
        if "note" in scores:
            click.echo(f"    note: {scores['note']}")


def _loss_text(loss: float | None, digits: int) -> str:
    """A training loss as shown; a step (or run) that drew no labelled clear pixel has none."""
    return f"{loss:.{digits}f}" if loss is not None and math.isfinite(loss) else "none (no labelled clear pixel)"


@cli.command()
@click.argument("model")
@click.argument("data", type=UserPath(exists=True, path_type=Path))
@device_option
@click.option("--bands", help=f"{BANDS_HELP} (a stack DATA/imagery.tif).")
@click.option("--all-patches", is_flag=True,
              help="Score every EuroSAT patch and DEA pixel, also those the model's card says it trained on.")
@dn_offset_option
def evaluate(model: str, data: Path, device: str, bands: str | None, all_patches: bool,
             dn_offset: float | None) -> None:
    """Score cropland MODEL ('cnn', 'rule' or a .safetensors file) on labelled DATA: accuracy, F1, IoU, confusion.

    DATA: a labelled scene (simulate folder, or imagery/ + labels.tif or labels.gpkg), a EuroSAT folder, or a
    Digital Earth Africa folder (all regions) or region. EuroSAT patches and DEA pixels the model's card
    records as trained on (matched by their band values as read, in any copy or encoding of the files) are
    left out; a note says how many, or when the model trained on what is scored.

    \b
    Example:
      farmcredit evaluate cnn ../shared/data/labels/deafrica-cropmask/northern
      farmcredit evaluate rule my-labelled-scene/      # the rule side by side on the same labels
    """
    from farmcredit.segmentation import load_cropland_model
    from farmcredit.segmentation.metrics import evaluate_path, format_report

    with _progress(False, unit="") as progress, _warnings_on_console():
        task = progress.add_task("evaluating", total=None)
        report = evaluate_path(load_cropland_model(model, device=device), data, all_patches, parse_band_layout(bands),
                               dn_offset,
                               progress=lambda doing, done, total: progress.update(task, description=doing,
                                                                                   completed=done, total=total))
    click.echo(format_report(report))


@cli.command()
@click.argument("model")
@click.argument("data", nargs=-1, required=True, type=UserPath(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=UserPath(path_type=Path), callback=_out_path,
              help="Write a calibrated copy here (.safetensors, its card .json beside). [default: rewrite the card "
                   "beside MODEL; its weights are untouched]")
# segmentation.card.AREA_INTERVAL_LEVEL (not imported here: it loads rasterio, and --help stays fast)
@click.option("--level", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.8,
              show_default=True, help="Share of DATA's parcels whose true cultivated area the interval is to hold.")
@click.option("--platt-only", is_flag=True,
              help="Fit the probabilities alone, on a scene without parcels.geojson and truth.csv: the model is "
                   "left no area margin (any it had is dropped), so its intervals leave out the doubt of parcel-edge "
                   "pixels and assess warns.")
@device_option
@click.option("--bands", help=f"{BANDS_HELP} (a stack DATA/imagery.tif; one layout for every scene: stacks of other "
                              "dates need band descriptions, e.g. '2024-03-01 B04', instead).")
@dn_offset_option
def calibrate(model: str, data: tuple[Path, ...], out: Path | None, level: float, platt_only: bool, device: str,
              bands: str | None, dn_offset: float | None) -> None:
    """Calibrate CNN weights MODEL (a .safetensors file, or 'cnn' with --out) on labelled scenes DATA... they did not
    train on, pooled: their crop probability (Platt scaling, with a reliability table) and, on each scene's
    parcels.geojson and truth.csv (parcel_id, polygon_area_ha, true_cultivated_area_ha, as `farmcredit simulate`
    writes), their cultivated-area interval's margin by parcel size. One scene's weather moves the margin it fits:
    pool several for intervals that hold on scenes to come, and check them on another with `farmcredit evaluate`.

    Weights from `farmcredit train` are uncalibrated: their intervals are too narrow and assess warns so.

    \b
    Example:
      for seed in 201 202 203 204; do farmcredit simulate --out calib-$seed --seed $seed; done
      farmcredit calibrate my-model.safetensors calib-201 calib-202 calib-203 calib-204
      farmcredit simulate --out check-scene --seed 205
      farmcredit evaluate my-model.safetensors check-scene
    """
    from farmcredit.segmentation.calibration import calibrate as calibrate_model
    from farmcredit.segmentation.card import card_path
    from farmcredit.segmentation.registry import weights_file

    weights = weights_file(model)
    with _warnings_on_console():
        card = calibrate_model(weights, data, out, level=level, platt_only=platt_only,
                               band_layout=parse_band_layout(bands), dn_offset=dn_offset, device=device)
    record, calibration = card.metrics["calibration"], card.calibration
    # A copy is the weights and their card; in place (no --out, or one that is MODEL), the card alone is rewritten.
    in_place = out is None or out.resolve() == weights.resolve()
    written = card_path(out or weights) if in_place else f"{out} and {card_path(out)}"
    margins = card.area_margins
    thin = record.get("widest_margin_for", ())

    def fitted(label: str, parcels: int) -> str:
        if not parcels:
            return "no parcels of this size: the widest of the others', unchecked"
        return f"{parcels} parcel{'s' * (parcels != 1)}{': too few to fit alone, the widest' if label in thin else ''}"

    by_size = ", ".join(f"{margin:g} for {label} ({fitted(label, parcels)})" for margin, label, parcels in
                        zip(margins.margins, margins.labels(), record.get("parcels_by_area", ())))
    former = record["calibrated_from"]["name"]
    renamed = f" (model {card.name}, calibrated from {former})" if card.name != former else ""
    console.print(f"wrote {written}{renamed}: Platt a={calibration['a']} b={calibration['b']} from {record['pixels']} "
                  "labelled pixels" + (f"; area margins (level {level:g}, by parcel size): {by_size}"
                                       if "mixed_margin" in calibration else ""), markup=False, highlight=False)
    if platt_only and "mixed_margin" in record["calibrated_from"]["calibration"]:
        console.print("the model's area margins were dropped (--platt-only): assess will warn that its intervals are "
                      "uncalibrated; calibrate without --platt-only on scenes with parcels.geojson and truth.csv to "
                      "fit them", markup=False, highlight=False)
    if "before_calibration" in card.metrics:
        console.print("the card's metrics, measured with the former calibration, are now under "
                      "metrics.before_calibration: `farmcredit evaluate` the model on held-out data for its own",
                      markup=False, highlight=False)
    click.echo(_reliability_text(record["reliability_uncalibrated"], record["reliability_calibrated"]))


def _reliability_text(uncalibrated: list[dict], calibrated: list[dict]) -> str:
    """Two reliability tables (``metrics.reliability_table``) side by side, bin by bin: the network's own probabilities
    and the calibrated ones."""
    rows = [{row["bin"]: row for row in table} for table in (uncalibrated, calibrated)]

    def cells(row: dict | None) -> str:
        return f"{row['n']:>9} {row['predicted']:>9.3f} {row['observed']:>8.3f}" if row else f"{'-':>9} {'':>9} {'':>8}"

    lines = [f"{'P(crop)':<8} {'uncalibrated:':<28}   {'calibrated:':<28}",
             f"{'':<8} {'pixels':>9} {'predicted':>9} {'observed':>8}   {'pixels':>9} {'predicted':>9} {'observed':>8}"]
    for name in sorted(rows[0].keys() | rows[1].keys()):
        lines.append(f"{name:<8} {cells(rows[0].get(name))}   {cells(rows[1].get(name))}")
    return "\n".join(lines)


@cli.group()
def credit() -> None:
    """Fit the risk model on a repayment history, and report on a run's decisions."""


@credit.command("fit")
@click.argument("history", type=UserPath(path_type=Path))
@click.option("--out", type=UserPath(), callback=_out_path, required=True, help="Where to write the model JSON.")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), help="Fit date (default today): "
              "outcomes dated later are refused as leakage.")
@click.option("--l2", type=click.FloatRange(min=0.0), default=1.0, show_default=True, help="Ridge penalty.")
@click.option("--declared-slack-ha", type=click.FloatRange(min=0.0),
              help="A declared area over the top of the cultivated interval by no more than this (ha) reads as "
                   "honest in declared_over_high, when fitting and, kept in the model, when scoring (default: the "
                   "packaged config's credit.declared_area_slack_ha, 0.01 ha: what declarations are rounded to).")
def credit_fit(history: Path, out: Path, as_of, l2: float, declared_slack_ha: float | None) -> None:
    """Fit the monotonic, calibrated risk scorecard on past loans (CSV or Parquet).

    HISTORY has one row per past loan: the agronomic columns of a results table
    (health_index, relative_yield, cultivated_fraction, cultivated_area_ha, cultivated_area_high_ha,
    declared_area_ha, ndvi_uniformity), its season, outcome_date and
    defaulted (0/1); declared_area_ha may be blank or left out (scored as
    honest, so it weighs nothing); an optional loan_id tells apart loans whose other columns are all the same (a
    loan given twice is refused).

    \b
    Example:
      farmcredit credit fit loans_2019_2024.csv --out my-risk-model.json
      farmcredit assess fields.gpkg --imagery S2/ --risk-model my-risk-model.json
    """
    from farmcredit.credit.history import fit_risk_model, read_history, write_risk_model
    from farmcredit.credit.risk import chance_warning

    fit_day = as_of.date() if as_of else date.today()  # the card says what the outcomes were checked against
    table = read_history(history, fit_day)
    model = fit_risk_model(table, source=f"{history} ({len(table)} loans)", l2=l2,
                           declared_slack_ha=declared_slack_ha, as_of=fit_day)
    write_risk_model(model, out)
    metrics = model["card"]["metrics"]
    # Both outcomes in the seasons predicted out of time (read_history), so the out-of-time AUC is defined.
    low, high = metrics["out_of_time_auc_ci95"]
    # The scores are the result (standard output, as evaluate's report); warnings and notes go to standard error.
    click.echo(f"fitted on {metrics['rows']} loans over seasons {', '.join(metrics['seasons'])}: "
               f"out-of-time AUC {metrics['out_of_time_auc']:.3f} (95% CI {low:.3f}-{high:.3f}, "
               f"{metrics['out_of_time_defaults']} defaults in {metrics['out_of_time_rows']} loans), "
               f"Brier {metrics['out_of_time_brier']:.4f}; wrote {out}")
    if warning := chance_warning(metrics):
        console.print(f"warning: {warning}", markup=False)
    if unpredicted := [s for s in metrics["seasons"][1:] if s not in metrics["out_of_time_seasons"]]:
        console.print(f"season(s) {', '.join(unpredicted)} train the scorecard but are not predicted out of time for "
                      "its calibration: the seasons before them hold loans of one outcome only", markup=False)
    for name, feature in model["card"]["features"].items():
        if "note" in feature:  # constant in the history: a lender that never records declared areas
            console.print(f"{name}: {feature['note']}", markup=False)


@credit.command("report")
@click.argument("results", type=UserPath(path_type=Path))
@click.option("--reference", type=UserPath(path_type=Path),
              help="An earlier run to measure stability and changes against (a folder or results file, as RESULTS).")
@click.option("--out", type=UserPath(), callback=_out_path, required=True, help="Report file (.html or .md).")
def credit_report_command(results: Path, reference: Path | None, out: Path) -> None:
    """Write a fairness, stability and changes report over a run's results (HTML or Markdown).

    RESULTS is an assess or batch output folder (its results.parquet is read) or a results file:
    results.parquet, results.csv or results.gpkg (a folder copied without its Parquet file).

    \b
    Examples:
      farmcredit credit report results/sample --reference results/last-season --out report.html
      farmcredit credit report results/sample/results.csv --out report.md
    """
    from farmcredit.credit.report import credit_report, load_results

    formats = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html"}
    if out.suffix.lower() not in formats:
        raise click.BadParameter(f"{out}: name a .html or .md file (the report is HTML or Markdown)",
                                 param_hint="--out")
    fmt = formats[out.suffix.lower()]
    table = load_results(results)
    base = load_results(reference) if reference else None
    console.print(f"wrote {credit_report(table, base, out=out, fmt=fmt)}", markup=False)


def _remote_source(src: str) -> RemoteSource | None:
    """The remote source ``--imagery`` names, None for a local one (a folder that exists is read, even one named
    ``stac``)."""
    from farmcredit.imagery.fetch import parse_remote_source

    return None if Path(src).exists() else parse_remote_source(src)


def _fetch_parcels(parcels: Path, reading: tuple[str | None, str | None, str]) -> str:
    """The parcels as a printed ``farmcredit fetch`` command names them (``fetch_parcel_words``), ``reading`` being
    (--parcels-crs, --parcels-layer, --parcels-datum)."""
    from farmcredit.pipeline import _command_line, fetch_parcel_words

    return _command_line(fetch_parcel_words(str(parcels), *reading))


def _local_imagery(src: str, parcels: Path, season: tuple[date, date] | None,
                   reading: tuple[str | None, str | None, str], out: Path, quiet: bool) -> str:
    """SRC itself, or for a remote source the folder OUT/imagery fetched over the parcels (read with ``reading``: their
    CRS, layer and datum) (reused when rerun)."""
    remote = _remote_source(src)
    if remote is None:
        return src
    if season is None:
        from farmcredit.imagery.fetch import public_url

        raise click.UsageError(f"--imagery {public_url(src)} fetches imagery, so it needs --season START/END")
    # The run reads the parcels again, with its config (a declared unit is offered by its currency): told then, once.
    _fetch(_parcel_area(parcels, reading, told=False), season, remote, out / "imagery", quiet=quiet)
    return str(out / "imagery")


def _parcel_area(parcels: Path, reading: tuple[str | None, str | None, str], told: bool = True) -> gpd.GeoSeries:
    """The area to fetch over: the parcels of the file, read with ``reading`` (--parcels-crs, --parcels-layer,
    --parcels-datum), the
    reader's warnings of their columns and rows ``told`` (errors raised either way)."""
    from farmcredit.imagery.fetch import area_from_parcels
    from farmcredit.parcels import logger as parcels_logger
    from farmcredit.parcels import read_parcels

    crs, layer, datum = reading
    level = parcels_logger.level
    if not told:
        parcels_logger.setLevel(logging.ERROR)
    try:
        return area_from_parcels(read_parcels(parcels, crs=crs, layer=layer, datum=datum))
    finally:
        parcels_logger.setLevel(level)


def _fetch(area: gpd.GeoSeries, season: tuple[date, date], source: RemoteSource, out: Path, quiet: bool,
           **options: Any) -> None:
    """`fetch_imagery` with a progress bar over scenes and a one-line summary."""
    from farmcredit.imagery.fetch import fetch_imagery

    with Progress(TextColumn("{task.description}"), BarColumn(), _CountColumn("scenes"), TimeElapsedColumn(),
                  console=console, disable=quiet, transient=True) as progress:
        task = progress.add_task(f"searching {source.describe()}", total=None)
        manifest = fetch_imagery(
            area, season, source, out, **options,
            progress=lambda what, done, total: progress.update(task, description=f"fetching {what}", completed=done,
                                                               total=total),
        )
    if not quiet:
        console.print(f"{manifest.summary()}; written to {out.resolve()}", markup=False)


def _memory_limit(value: str) -> str:
    """``--memory-limit`` as Dask reads it: auto, a size such as 4GiB, a share of the machine's memory (0-1], or 0
    (no limit); anything else is a usage error."""
    from dask.utils import parse_bytes
    from distributed.system import MEMORY_LIMIT

    from farmcredit.batch.runner import MIN_WORKER_MEMORY

    try:
        share = float(value)
    except ValueError:
        share = None
    if value == "auto" or share == 0:
        return value
    if share is not None and 0 < share <= 1:  # a share of the machine's memory, for each worker
        if share * MEMORY_LIMIT >= MIN_WORKER_MEMORY:
            return value
        raise click.BadParameter(f"{value} of this machine's memory is under {MIN_WORKER_MEMORY >> 30}GiB a worker")
    try:
        if parse_bytes(value) >= MIN_WORKER_MEMORY:
            return value
    except ValueError:
        pass
    raise click.BadParameter(f"{value!r} is not a size of {MIN_WORKER_MEMORY >> 30}GiB or more such as 4GiB, a share "
                             "of memory such as 0.5, 0 (no limit) or auto")


@contextmanager
def _warnings_on_console() -> Iterator[None]:
    """Warnings the library raises (``warnings.warn``) printed as the console's own, when raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("default", UserWarning)  # not the dependencies' DeprecationWarnings
        warnings.showwarning = lambda message, *_: console.print(f"[yellow]warning:[/] {_shown(str(message))}",
                                                                 highlight=False)
        yield


def _reason_kind(reason: str) -> str:
    """A partition's failure without what differs between partitions (Dask's task keys, worker addresses, its part
    file's and temporary file's names), so the summary counts like failures together."""
    reason = re.sub(r"'measure_partition-[0-9a-f-]+'", "<task>", reason)  # a token, or a uuid4 (pure=False)
    reason = re.sub(r"\.?part-[0-9a-f]{16}\.parquet(\.[0-9a-f]+\.tmp)?", "<partition file>", reason)
    return re.sub(r"\b(tcp|tls|ucx|inproc)://\S+?(?=[\s.,;)]*(\s|$))", "<worker>", reason)  # not a file's URL


def _decision_summary(result: Assessment) -> str:
    """A run's parcels and borrowers counted by decision, with their limit totals (``_limit_totals``), as assess and
    batch end, e.g. ``752 parcels: 525 approve, 120 refer, 107 decline (0 could not be assessed); 380 borrowers: ...``.
    """
    from farmcredit.credit.limit import DECISIONS

    counts = result.parcels["decision"].value_counts()
    status = result.parcels["status"].value_counts()
    lenders = result.borrowers["decision"].value_counts()
    return (f"{len(result.parcels)} parcels: "
            + ", ".join(f"{counts.get(d, 0)} {d}" for d in DECISIONS)
            + f" ({status.get('error', 0)} could not be assessed); {len(result.borrowers)} borrowers: "
            + ", ".join(f"{lenders.get(d, 0)} {d}" for d in DECISIONS)
            + _limit_totals(result.record["counts"], result.parcels.attrs.get("currency", "CNY")))


def _season_summary(result: Assessment) -> str:
    """How clouded the season was over the parcels, as assess and batch end (``run.json``'s ``season_clear``), e.g.
    ``season: 16 dates, 2024-03-01 to 2024-10-27; clear over half the parcels or more on 8, over none on 1
    (2024-04-20); a parcel's clear dates: median 9``: a monsoon clouding every parcel from July to October is told
    apart from a few parcels' bad luck, which the warnings' counts of parcels alone did not; '' without dates."""
    season = result.record["season_clear"]
    days, measured = season["dates"], season["parcels_measured"]
    if not days or not measured:
        return ""
    half = sum(2 * day["parcels_clear"] >= measured for day in days)
    unseen = [day["date"] for day in days if day["parcels_clear"] == 0]
    named = f" ({', '.join(unseen[:5])}{', ...' if len(unseen) > 5 else ''})" if unseen else ""
    seen = result.parcels.loc[result.parcels["status"] != "error", "clear_observations"]
    return (f"season: {len(days)} dates, {days[0]['date']} to {days[-1]['date']}; clear over half the parcels or "
            f"more on {half}, over none on {len(unseen)}{named}; a parcel's clear dates: median {seen.median():g}")


def _limit_totals(counts: dict, currency: str) -> str:
    """The borrowers' limits as the summary line ends: approved apart from referred (``run.json``'s ``counts``), whose
    limit waits on a person's review, e.g. ``; approved 250,700 CNY; 217,100 CNY pending review``, their cents shown
    when they have some (a ``rounding_step`` under 1: rounded to the yuan, 264,406.67 read as more than lent)."""
    from farmcredit.credit.limit import money

    return (f"; approved {money(counts['approved_limit'])} {currency}; "
            f"{money(counts['referred_limit'])} {currency} pending review")


@contextmanager
def _stages(progress: Progress, quiet: bool) -> Iterator[Callable[[str], None]]:
    """Show ``progress``, a run's measuring bar, until the first stage after measuring starts; yields the callback
    that says each such stage (``run_assessment``'s ``stage``) on a line of its own, unless ``quiet``, the bar ended
    (left up, it read N/N, 0/s, 0:00:00 remaining through a minute of finishing and writing)."""

    def begin(name: str) -> None:
        if progress.live.is_started:
            progress.stop()
        if not quiet:
            console.print(f"{name}...", markup=False)

    progress.start()
    try:
        yield begin
    finally:
        if progress.live.is_started:
            progress.stop()


def _progress(quiet: bool, unit: str = "windows") -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), _CountColumn(unit), TimeRemainingColumn(),
                    console=console, disable=quiet, transient=True)


class _CountColumn(ProgressColumn):
    """``done/total UNIT`` (``done/total`` without a unit), with ``?`` for a total not yet known (it read
    ``0/None parcels``)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        total = "?" if task.total is None else f"{task.total:.0f}"
        return Text(f"{task.completed:.0f}/{total} {self.unit}".rstrip())


# Control and format characters (a bidi override, a zero-width space or byte-order mark that makes two ids print
# alike), lone surrogates (unprintable), line and paragraph breaks.
_NOT_SHOWN = {"Cc", "Cf", "Cs", "Zl", "Zp"}
_SPELLING = frozenset("\u200c\u200d")  # the zero-width non-joiner and joiner: Persian کشت‌زار, Devanagari, emoji


def _shown(text: str) -> str:
    """``text`` for a console line: its Rich markup escaped, and each character a terminal acts on rather than shows
    (an escape sequence, a newline, a bidi override) written as its Python escape (``\\x1b``), so a parcel id or file
    name quoted in a message can neither clear the screen, reorder it nor forge a line of its own (the tool's messages
    are one line each)."""
    return escape("".join(char.encode("unicode_escape").decode("ascii")
                          if unicodedata.category(char) in _NOT_SHOWN and char not in _SPELLING else char
                          for char in text))


class _ConsoleWarnings(logging.Handler):
    """The library's logged warnings (e.g. band files GDAL cannot open) as the console's own ``warning:`` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        console.print(f"[yellow]warning:[/] {_shown(record.getMessage())}", highlight=False)


class _ReaderMayLeave:
    """A standard stream whose reader may go away (``2>&1 | head``, a ``tee`` killed, a closed terminal): once a write
    finds the pipe broken, the stream goes to the null device, so the run's later messages are dropped and the run
    goes on to write its outputs (its messages are not its results) rather than stopping, exit 1, with nothing."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._guarded(lambda: self._stream.write(text))

    def flush(self) -> None:
        self._guarded(self._stream.flush)

    def _guarded(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except BrokenPipeError:
            # What the stream still buffers goes to the null device with the rest (Python's own advice on SIGPIPE).
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._stream.fileno())
            os.close(null)
            return call()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main() -> None:
    """Entry point: run the CLI, turning farmcredit errors into a message and exit code 2."""
    # A stream closed at the start is None, which rich and print pass over: left so.
    sys.stdout, sys.stderr = (stream if stream is None or isinstance(stream, _ReaderMayLeave)
                              else _ReaderMayLeave(stream) for stream in (sys.stdout, sys.stderr))
    library_log = logging.getLogger("farmcredit")
    if not any(isinstance(handler, _ConsoleWarnings) for handler in library_log.handlers):
        library_log.addHandler(_ConsoleWarnings(logging.WARNING))
        library_log.propagate = False
    signal.signal(signal.SIGTERM, terminate)
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, Terminated):
            console.print("terminated")
            sys.exit(TERMINATED)
        console.print("aborted")
        # click aborts on Ctrl-C and on an input that ended (EOFError): only the first is an interrupt.
        sys.exit(INTERRUPTED if isinstance(exc.__context__, KeyboardInterrupt) else 1)
    except FarmcreditError as exc:
        console.print(f"[bold red]error:[/] {_shown(str(exc))}", highlight=False)
        sys.exit(USAGE_ERROR)
