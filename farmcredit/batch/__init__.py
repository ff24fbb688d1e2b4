"""Portfolio-scale runs on Dask: partitioned, resumable measurement, then the run finished as ``assess`` does."""

from farmcredit.batch.runner import BatchResult, run_batch

__all__ = ["BatchResult", "run_batch"]
