"""The ``farmcredit`` command line: a thin click layer over the library, one command each."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from farmcredit import __version__
from farmcredit.errors import FarmcreditError

USAGE_ERROR = 2
console = Console(stderr=True)


def parse_season(text: str | None) -> tuple[date, date] | None:
    """Parse ``START/END`` (ISO dates) into a date pair; ``None`` passes through."""
    if text is None:
        return None
    try:
        start, end = (date.fromisoformat(part.strip()) for part in text.split("/"))
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not START/END, e.g. 2024-03-01/2024-10-31") from exc
    if end < start:
        raise click.BadParameter(f"season {text!r} ends before it starts")
    return start, end


def parse_band_layout(text: str | None) -> list[tuple[date | None, str]] | None:
    """Parse ``DATE:BAND,BAND;DATE:BAND,...`` (one entry per stack band, in order)."""
    if text is None:
        return None
    layout: list[tuple[date | None, str]] = []
    try:
        for group in text.split(";"):
            when, _, bands = group.rpartition(":")
            day = date.fromisoformat(when.strip()) if when.strip() else None
            layout += [(day, band.strip().upper()) for band in bands.split(",")]
    except ValueError as exc:
        example = "2021-06-17:B04,B03,B02,B08;2021-09-25:B04,B03,B02,B08"
        raise click.BadParameter(f"{text!r} is not DATE:BAND,...;DATE:BAND,..., e.g. {example}") from exc
    return layout


@click.group()
@click.version_option(__version__, prog_name="farmcredit")
def cli() -> None:
    """farmcredit: Sentinel-2 imagery over farmers' parcels to explainable loan limits."""


@cli.command()
@click.argument("parcels", type=click.Path(path_type=Path))
@click.option("--imagery", "imagery_src", required=True,
              help="Imagery folder (Earth Search layout) or multi-band GeoTIFF.")
@click.option("--season", help="START/END in ISO dates; default: every date in the imagery.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("farmcredit-results"), show_default=True,
              help="Output folder.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="YAML config (default: packaged).")
@click.option("--parcels-crs", help="CRS to assume when the parcel file declares none, e.g. EPSG:4326.")
@click.option("--bands", help="Band layout of a multi-band GeoTIFF without band descriptions: "
              "DATE:BAND,...;DATE:BAND,... in band order.")
@click.option("--risk-model", type=click.Path(path_type=Path),
              help="Risk model JSON from `farmcredit credit fit` (default: the shipped synthetic one).")
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
def assess(parcels: Path, imagery_src: str, season: str | None, out: Path, config_path: Path | None,
           parcels_crs: str | None, bands: str | None, risk_model: Path | None, quiet: bool) -> None:
    """Assess PARCELS against a season of Sentinel-2 imagery and write results to --out.

    \b
    Examples:
      farmcredit assess sample_tiles/parcels.geojson --imagery sample_tiles/imagery --out results
      farmcredit assess fields.gpkg --imagery S2/ --season 2024-03-01/2024-10-31 --config my-region.yaml
      farmcredit assess fields.shp --parcels-crs EPSG:4326 --imagery stack.tif --bands 2021-06-17:B04,B03,B02,B08
    """
    from farmcredit.imagery import open_imagery
    from farmcredit.outputs import write_outputs
    from farmcredit.pipeline import run_assessment

    window = parse_season(season)
    imagery = open_imagery(imagery_src, window, band_layout=parse_band_layout(bands))
    with _progress(quiet) as progress:
        task = progress.add_task("reading imagery windows", total=None)
        result = run_assessment(
            parcels, imagery, season=window, config=config_path, parcels_crs=parcels_crs, risk_model=risk_model,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    files = write_outputs(out, result)
    if not quiet:
        counts = result.parcels["decision"].value_counts()
        status = result.parcels["status"].value_counts()
        console.print(
            f"{len(result.parcels)} parcels: "
            + ", ".join(f"{counts.get(d, 0)} {d}" for d in ("approve", "refer", "decline"))
            + f" ({status.get('error', 0)} could not be assessed); "
            f"{len(result.borrowers)} borrowers, total limit {result.borrowers['loan_limit'].sum():,.0f} "
            f"{result.parcels.attrs.get('currency', 'CNY')}"
        )
        console.print(f"results written to {out.resolve()}: " + ", ".join(p.name for p in files.values()))


@cli.command()
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder to write the season into.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same bytes).")
@click.option("--size", "size_px", type=click.IntRange(32, 4096), help="Scene size in 10 m pixels per side.")
def simulate(out: Path, seed: int, size_px: int | None) -> None:
    """Write a synthetic Sentinel-2 L2A season with exact ground truth.

    \b
    Example:
      farmcredit simulate --out sample_tiles --seed 42
    """
    from dataclasses import replace

    from farmcredit.simulate import SimulationSpec, simulate_season

    spec = SimulationSpec() if size_px is None else replace(SimulationSpec(), size_px=size_px)
    result = simulate_season(out, seed=seed, spec=spec)
    console.print(
        f"wrote {result.n_parcels} parcels and {len(result.dates)} dates to {result.root.resolve()} "
        f"(imagery {result.imagery_dir.name}/, {result.parcels_path.name}, {result.truth_path.name})"
    )


@cli.group()
def credit() -> None:
    """Fit the risk model on a repayment history, and report on a run's decisions."""


@credit.command("fit")
@click.argument("history", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Where to write the model JSON.")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), help="Fit date (default today): "
              "outcomes dated later are refused as leakage.")
@click.option("--l2", type=click.FloatRange(min=0.0), default=1.0, show_default=True, help="Ridge penalty.")
def credit_fit(history: Path, out: Path, as_of, l2: float) -> None:
    """Fit the monotonic, calibrated risk scorecard on past loans (CSV or Parquet).

    HISTORY has one row per past loan: the agronomic columns of a results table
    (health_index, yield_p10_t_ha, clear_observations, cultivated_fraction, cultivated_area_ha,
    declared_area_ha, ndvi_uniformity), its season, outcome_date and defaulted (0/1).

    \b
    Example:
      farmcredit credit fit loans_2019_2024.csv --out my-risk-model.json
      farmcredit assess fields.gpkg --imagery S2/ --risk-model my-risk-model.json
    """
    from farmcredit.credit.history import fit_risk_model, read_history, write_risk_model

    table = read_history(history, as_of.date() if as_of else None)
    model = fit_risk_model(table, source=f"{history} ({len(table)} loans)", l2=l2)
    write_risk_model(model, out)
    metrics = model["card"]["metrics"]
    console.print(f"fitted on {metrics['rows']} loans over seasons {', '.join(metrics['seasons'])}: "
                  f"out-of-time AUC {metrics['out_of_time_auc']:.3f}, Brier {metrics['out_of_time_brier']:.4f}; "
                  f"wrote {out}")


@credit.command("report")
@click.argument("results", type=click.Path(path_type=Path))
@click.option("--reference", type=click.Path(path_type=Path), help="An earlier run to measure stability against.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Report file (.html or .md).")
def credit_report_command(results: Path, reference: Path | None, out: Path) -> None:
    """Write a fairness and stability report over a run's results (HTML or Markdown).

    \b
    Example:
      farmcredit credit report results/sample --reference results/last-season --out report.html
    """
    from farmcredit.credit.report import credit_report, load_results

    fmt = "md" if out.suffix.lower() in (".md", ".markdown") else "html"
    table = load_results(results)
    base = load_results(reference) if reference else None
    console.print(f"wrote {credit_report(table, base, out=out, fmt=fmt)}")


def _progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} windows"),
        TimeRemainingColumn(), console=console, disable=quiet, transient=True,
    )


def main() -> None:
    """Entry point: run the CLI, turning farmcredit errors into a message and exit code 2."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        console.print("aborted")
        sys.exit(1)
    except FarmcreditError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(USAGE_ERROR)
