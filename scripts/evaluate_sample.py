"""Print how an assessment of sample_tiles/ compares with its ground truth.

Usage: python scripts/evaluate_sample.py results/sample/results.parquet sample_tiles/truth.csv
"""

import sys

import geopandas as gpd
import pandas as pd

from farmcredit.evaluation import score_against_truth

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    score = score_against_truth(gpd.read_parquet(sys.argv[1]), pd.read_csv(sys.argv[2], dtype={"parcel_id": str}))
    print(score.table())
