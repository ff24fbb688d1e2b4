"""Where the cropland model runs on a cluster: GPU workers run the CNN, CPU workers read and measure.

A worker started with the Dask resource ``GPU`` (``dask worker --resources GPU=1``) is a GPU
worker. When the cluster has one and the model can use it, a partition measured on a CPU worker
reads its windows and computes its statistics there but sends each window's inference as a task
that needs ``GPU`` (``GpuInference``); a partition that lands on a GPU worker runs the model in
place. No task ever waits for a slot its own worker holds, so the split cannot deadlock, and each
worker holds one partition's window at a time, so memory stays that of a plain run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from farmcredit.imagery import SeasonCube
from farmcredit.segmentation import CroplandModel

GPU_RESOURCE = "GPU"


def uses_gpu(model: CroplandModel) -> bool:
    """True for models that can move to a GPU (the CNN); the rule gains nothing from one."""
    return callable(getattr(model, "on_device", None))


def portable(model: CroplandModel) -> CroplandModel:
    """The model as sent to workers: on the CPU, so any worker can unpickle it and pick its own device."""
    return model.on_device("cpu") if uses_gpu(model) else model


def on_this_worker(model: CroplandModel, gpu_cluster: bool) -> CroplandModel:
    """The model a partition task runs on this worker.

    Args:
        model: as sent by the driver (``portable``).
        gpu_cluster: the run uses the cluster's GPU workers for this model.
    """
    if not gpu_cluster:
        return model
    return model.on_device("auto") if _worker_has_gpu() else GpuInference(model)


def local_gpu_count(model: CroplandModel) -> int:
    """CUDA devices this machine has for ``model`` (0 for a model that does not use one)."""
    if not uses_gpu(model):
        return 0
    import torch

    return torch.cuda.device_count()


@dataclass(frozen=True)
class GpuInference:
    """A ``CroplandModel`` that runs each window's inference as a task on a worker with a ``GPU`` resource."""

    model: CroplandModel

    @property
    def name(self) -> str:
        """The wrapped model's name."""
        return self.model.name

    @property
    def bands(self) -> tuple[str, ...]:
        """The bands the wrapped model reads."""
        return tuple(getattr(self.model, "bands", ()))

    def predict_proba(self, cube: SeasonCube, indices: Mapping[str, np.ndarray]) -> np.ndarray:
        """P(cropland) for the window, computed on a GPU worker (this thread waits for it)."""
        from distributed import get_client

        # Ahead of queued partitions on a GPU worker, so its CPU-worker clients never starve.
        future = get_client().submit(infer_on_gpu, self.model, cube, indices, resources={GPU_RESOURCE: 1},
                                     priority=10, pure=False)
        return future.result()


def infer_on_gpu(model: CroplandModel, cube: SeasonCube, indices: Mapping[str, np.ndarray]) -> np.ndarray:
    """The inference task: the model on this worker's device, applied to one window."""
    return model.on_device("auto").predict_proba(cube, indices)


def cluster_has_gpu(scheduler_info: Mapping) -> bool:
    """True when any worker of the cluster (``Client.scheduler_info()``) offers the ``GPU`` resource."""
    return any(w.get("resources", {}).get(GPU_RESOURCE) for w in scheduler_info.get("workers", {}).values())


def _worker_has_gpu() -> bool:
    from distributed import get_worker

    try:
        return bool(get_worker().state.total_resources.get(GPU_RESOURCE))
    except ValueError:  # not on a worker (a plain call, e.g. in a test)
        return False
