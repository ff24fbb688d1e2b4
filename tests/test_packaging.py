"""What the package ships keeps to what it advertises: source that runs on the oldest Python pyproject allows, an
sdist and a wheel of the package alone, and credits for the data its weights learnt from."""

import ast
import glob
import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tarfile
import typing
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

try:
    import tomllib  # novm: Python 3.10 has none, but tomli, which pytest needs there
except ModuleNotFoundError:
    import tomli as tomllib

from farmcredit.batch import run_batch
from farmcredit.imagery import open_imagery
from farmcredit.pipeline import assess, load_inputs, run_assessment
from farmcredit.segmentation.card import DEFAULT_WEIGHTS, card_path

REPO = Path(__file__).resolve().parents[1]
# What .gitignore keeps out of the repository, and git's own folder.
IGNORED = (".git", ".venv", "__pycache__", "*.pyc", "*.egg-info", ".pytest_cache", ".hypothesis", "results", "build",
           "dist", ".cache", ".device")


def test_source_needs_no_python_newer_than_requires_python(not_installed: Callable[[str], NoReturn]) -> None:
    """vermin reads the source for syntax and standard-library names (``datetime.UTC`` is 3.11+) newer than the
    floor. It cannot see behaviour that changed between versions, nor what the dependencies need."""
    if importlib.util.find_spec("vermin") is None:
        not_installed("vermin is not installed (pip install -e '.[test]')")
    # tomllib is itself 3.11+: a pattern reads the one line.
    floor = re.search(r'^requires-python = ">=(\d+\.\d+)"$', (REPO / "pyproject.toml").read_text(), re.MULTILINE)
    assert floor, 'pyproject.toml is expected to say requires-python = ">=X.Y"'
    folders = [str(REPO / name) for name in ("farmcredit", "scripts", "benchmarks", "tests")]
    found = subprocess.run(
        [sys.executable, "-c", "import sys; from vermin import main; sys.exit(main())",
         f"--target={floor[1]}-", "--violations", "--no-tips", "--eval-annotations", *folders],
        capture_output=True, text=True, check=False,
    )
    assert found.returncode == 0, found.stdout + found.stderr


# The oldest version of a dependency farmcredit's code runs on, and what an older one lacks: pyproject.toml's floors
# keep to these, as pip installs whatever a floor allows alongside an older environment's packages.
NEEDED_FLOORS = {
    "numpy": ((2, 0), "np.trapezoid (agronomy/signals.py): numpy 1.26 has only np.trapz"),
    # Tried: with the 0.8-0.10 wheels (GDAL 3.8-3.9) a Shapefile of GBK column names and no .cpg (an older ArcGIS's)
    # was refused as "not a readable vector file: 'utf-8' codec can't decode", not told to add a .cpg
    # (test_parcels.py). 0.11 also takes pandas 3's text columns (pandas>=2.0 allows 3) and all-None ones via Arrow.
    # numpy>=2 needs the compiled packages built against it: an older pandas (2.0.3) fails to import beside numpy 2.0
    # ("numpy.dtype size changed, may indicate binary incompatibility"), and a resolver keeps one already installed.
    "pandas": ((2, 2, 2), "built for numpy 2 (2.0.3 does not import beside it); as_dates crashes on pandas 1.5"),
    "rasterio": ((1, 3, 10), "built for numpy 2"),
    "pyarrow": ((16,), "built for numpy 2"),
    "matplotlib": ((3, 8, 4), "built for numpy 2"),
    "scipy": ((1, 13), "built for numpy 2"),
    "scikit-learn": ((1, 4, 2), "built for numpy 2"),
    "affine": ((3, 0), "Affine @ (imagery/fetch.py, imagery/mosaic.py): affine 2 has only *"),
    "pyogrio": ((0, 11), "GBK column names read as a Shapefile's encoding problem; pandas 3 text columns"),
}


def _declared_floors() -> dict[str, tuple[int, ...] | None]:
    """pyproject.toml's dependencies by normalised name (an extra, ``dask[distributed]``, declares its namesake too),
    each with its ``>=`` floor as numbers (None without one). tomllib is 3.11+: patterns read the list."""
    block = re.search(r"^dependencies = \[\n(.*?)^\]", (REPO / "pyproject.toml").read_text(), re.MULTILINE | re.DOTALL)
    assert block, "pyproject.toml is expected to list its dependencies one a line"
    declared: dict[str, tuple[int, ...] | None] = {}
    for name, extras, versions in re.findall(r'^\s*"([\w.-]+)(?:\[([\w,.-]+)\])?([^"]*)"', block[1], re.MULTILINE):
        floor = re.search(r">=\s*([\d.]+)", versions)
        declared[_normalised(name)] = tuple(int(part) for part in floor[1].split(".")) if floor else None
        declared.update(dict.fromkeys(map(_normalised, filter(None, extras.split(","))), declared[_normalised(name)]))
    return declared


def _normalised(name: str) -> str:
    """A distribution's name as the packaging standards compare them (``PyYAML`` is ``pyyaml``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def test_declared_floors_admit_no_version_the_code_cannot_run_on() -> None:
    """numpy>=1.26 was declared while the code called np.trapezoid (numpy 2.0): an environment holding numpy 1.26
    installed farmcredit and crashed measuring the first season."""
    declared = _declared_floors()
    too_low = {name: (declared.get(name), needed, why) for name, (needed, why) in NEEDED_FLOORS.items()
               if (declared.get(name) or ()) < needed}
    assert too_low == {}


def _built(kind: str, tmp_path: Path) -> list[str]:
    """Build the ``sdist`` or ``wheel`` of a copy of the working tree (less what git ignores) with setuptools, as pip
    would; the paths of its files, an sdist's less its ``farmcredit-X.Y.Z/`` folder."""
    source = tmp_path / "source"
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(*IGNORED))
    built = subprocess.run(
        [sys.executable, "-c", f"import sys; from setuptools import build_meta; build_meta.build_{kind}(sys.argv[1])",
         str(tmp_path)],
        cwd=source, capture_output=True, text=True, check=False,
    )
    assert built.returncode == 0, built.stderr
    if kind == "wheel":
        (wheel,) = tmp_path.glob("farmcredit-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            return archive.namelist()
    (sdist,) = tmp_path.glob("farmcredit-*.tar.gz")
    with tarfile.open(sdist) as archive:
        return [member.name.split("/", 1)[1] for member in archive.getmembers() if member.isfile()]


@pytest.mark.slow
def test_sdist_holds_the_package_and_no_part_of_the_tests(tmp_path: Path) -> None:
    """The tests need conftest.py, sample_tiles/ and ../shared/data: a part of them in the sdist would not run."""
    members = _built("sdist", tmp_path)
    assert "farmcredit/default_config.yaml" in members  # the link into configs/, as a file
    assert {"farmcredit/segmentation/cropland_cnn_v2.safetensors", "LICENSE", "NOTICE"} <= set(members)
    assert not [name for name in members if name.split("/")[0] in ("tests", "scripts", "benchmarks", "sample_tiles")]


@pytest.mark.slow
def test_wheel_carries_the_notice_crediting_the_shipped_weights_training_data(tmp_path: Path) -> None:
    members = _built("wheel", tmp_path)
    assert "farmcredit/segmentation/cropland_cnn_v2.safetensors" in members
    licences = {name.rsplit("/", 1)[1] for name in members if name.split("/")[-2:-1] == ["licenses"]}
    assert licences == {"LICENSE", "NOTICE"}


def test_every_tracked_file_in_the_package_is_package_data() -> None:
    """pyproject lists the package's data files one by one: a file added under farmcredit/ and not listed was left
    out of the sdist and the wheel without a word, and what reads it failed only once installed. Patterns are
    globbed in their package's folder, as setuptools does (``"*"`` or ``""``: in every package's)."""
    listed = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    tracked = subprocess.run(["git", "ls-files", "-z", "farmcredit"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split("\0")
    packages = {path.parent for path in (REPO / "farmcredit").rglob("__init__.py")}
    shipped = {Path(found).relative_to(REPO).as_posix()
               for package, patterns in listed.items()
               for folder in (packages if package in ("", "*") else {REPO / package.replace(".", "/")})
               for pattern in patterns for found in glob.glob(str(folder / pattern), recursive=True)}
    unlisted = sorted(name for name in tracked if name and not name.endswith(".py") and name not in shipped)
    assert unlisted == [], "add these to [tool.setuptools.package-data] in pyproject.toml, or they do not ship"


def test_shipped_card_and_notice_credit_each_third_party_source_the_weights_learnt_from() -> None:
    training = json.loads(card_path(DEFAULT_WEIGHTS).read_text())["training"]
    used = {source for source in ("eurosat", "dea") if training.get(f"{source}_sha256")}
    assert used == {"eurosat", "dea"}
    assert used <= set(training["data_licences"])
    notice = (REPO / "NOTICE").read_text()
    for credit in ("EuroSAT", "Helber", "MIT License", "Digital Earth Africa", "Apache License",
                   "Contains modified Copernicus Sentinel data"):
        assert credit in notice


def test_readme_quotes_the_shipped_cards_area_interval() -> None:
    """README gave the CNN's margins as 0.099 / 0.099 / 0.056 / 0.049 and its test coverage as 88%, where the shipped
    card has 0.097 / 0.097 / 0.059 / 0.048 and 87.13%."""
    card = json.loads(card_path(DEFAULT_WEIGHTS).read_text(encoding="utf-8"))
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    margins = " / ".join(f"{margin:.3f}" for margin in card["calibration"]["mixed_margin"])
    cnn, rule = card["metrics"]["simulated_test_area_cnn"], card["metrics"]["simulated_test_area_rule"]
    held = " / ".join(f"{round(100 * size['coverage'])}%" for size in cnn["interval_coverage_by_area"].values())
    assert f"the CNN's margins are {margins} and it holds {held} of each size" in readme
    overall = f"{round(100 * cnn['interval_coverage'])}% (CNN) / {round(100 * rule['interval_coverage'])}% (rule)"
    assert f"Out of sample the truth falls inside it for {overall}" in readme


def test_every_package_farmcredit_imports_is_a_declared_dependency() -> None:
    """pandas, requests and affine were imported but came only through geopandas, pystac-client and rasterio, so no
    floor held them to what the code needs (pandas 1.5 crashed writing the results)."""
    imported = set()
    for source in (REPO / "farmcredit").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level:
                imported.add(node.module.split(".")[0])
    declared = _declared_floors()
    distributions = importlib.metadata.packages_distributions()  # pystac's module comes in several
    undeclared = sorted(module for module in imported - set(sys.stdlib_module_names) - {"farmcredit"}
                        if not {_normalised(name) for name in distributions.get(module, [module])} & declared.keys())
    assert undeclared == []


@pytest.mark.parametrize("function", [assess, run_assessment, load_inputs, run_batch])
def test_public_annotations_admit_what_readme_documents(function: Callable[..., object]) -> None:
    """py.typed ships, so a user's type checker holds calls to these hints: ``config={"credit": {"min_loan": 500}}``
    (README) and a band layout's ISO dates, as ``open_imagery`` takes them, were rejected, as were run_batch's season
    as ``"START/END"`` and parcels_crs as an EPSG code."""
    hints = typing.get_type_hints(function)
    assert str in typing.get_args(hints["season"]) and int in typing.get_args(hints["parcels_crs"])
    assert any(issubclass(dict, typing.get_origin(kind) or kind) for kind in typing.get_args(hints["config"]))
    if "band_layout" in hints:
        assert hints["band_layout"] == typing.get_type_hints(open_imagery)["band_layout"]


def test_the_assessments_fields_resolve_and_name_no_module_that_loads_matplotlib() -> None:
    """``typing.get_type_hints(farmcredit.Assessment)`` raised NameError: PixelRasters, its ``pixels``' type, was
    imported for type checkers alone. It is imported, and the pipeline still loads no matplotlib (the previews')."""
    from farmcredit.outputs.rasters import PixelRasters
    from farmcredit.pipeline import Assessment

    assert typing.get_type_hints(Assessment)["pixels"] == PixelRasters | None
    loaded = subprocess.run([sys.executable, "-c", "import sys, farmcredit; farmcredit.Assessment; "
                             "print('matplotlib' in sys.modules)"], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"
