#!/usr/bin/env bash
# The cropland CNN's GPU check as one prepared run on the GPU machine (the `device` tool).
#
# Here, with the package registry:  bash scripts/gpu_check.sh fetch
#   downloads the wheels the GPU machine lacks (Python 3.12, x86-64) into .device/wheels and copies
#   the real FTW Austria image from ../shared to .device/ (git-ignored, about 40 MB).
# There, carrying [".device"]:       bash scripts/gpu_check.sh run
#   installs them into /tmp/site and runs benchmarks/inference.py (GPU compute alone per tile beside an
#   FTW-style U-Net, the whole predict path against reading, CPU vs GPU class agreement on real imagery);
#   the output also goes to $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
# What farmcredit.segmentation.cnn, farmcredit.imagery and benchmarks/inference.py import that the GPU machine's image
# lacks, or may hold too old (pydantic-core needs typing-extensions >= 4.14; rasterio imports click and attrs;
# farmcredit.imagery.scene imports pyproj, which needs certifi, already there).
WHEELS=(rasterio==1.4.4 affine==3.0.1 attrs==26.1.0 click==8.5.1 pydantic==2.14.4 pydantic-core==2.50.5
        annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0 pyproj==3.7.2)
case "${1:-}" in
  fetch)
    python="$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )"
    rm -rf .device/wheels && mkdir -p .device/wheels
    "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d .device/wheels "${WHEELS[@]}"
    cp ../shared/data/s2/ftw-austria-2021/inference-img.tif .device/ftw-austria.tif
    du -sh .device ;;
  run)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      .device/wheels/*.whl
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 benchmarks/inference.py --austria .device/ftw-austria.tif | tee "${OUT:-.}/inference.txt" ;;
  *)
    echo "usage: bash scripts/gpu_check.sh fetch|run" >&2
    exit 2 ;;
esac
