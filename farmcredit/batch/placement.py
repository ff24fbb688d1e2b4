"""Where the cropland model runs on a cluster: GPU workers run the CNN, CPU workers read and measure.

A worker started with the Dask resource ``GPU`` (``dask worker --resources GPU=1``) is a GPU
worker. When the cluster has one and the model can use it, partitions go to the CPU workers
(``cpu_workers``; a loose restriction: they run elsewhere if no CPU worker is left, and Dask's work
stealing may hand one to an idle GPU worker).
A partition reads its windows and computes its statistics there but sends each window's
inference to a GPU worker (``GpuInference``): the window's bands stay on the CPU worker (scattered
there, never through the scheduler) and the GPU worker fetches them. A partition that does land on
a GPU worker runs the network in place. No task waits on a slot its own worker holds, so the split
cannot deadlock, and each CPU worker holds one window at a time, so memory stays that of a plain run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from farmcredit.imagery import SeasonCube
from farmcredit.margins import AreaMargins, model_margins
from farmcredit.pipeline import joined_kinds, model_read_context
from farmcredit.segmentation import CroplandModel

if TYPE_CHECKING:
    from distributed import Client

GPU_RESOURCE = "GPU"
# A CPU worker gives up on a window's inference after this long (no GPU worker left, say): its
# partition fails, is retried, then recorded failed like any other.
INFERENCE_TIMEOUT_S = 900.0
# Per process: the model on this worker's device with (device, precision), by its ``describe`` hash (weights as
# loaded, normalisation, classes, calibration: a card recalibrated over the same weights file is another model),
# moved and described once, not per window.
_ON_DEVICE: dict[str, tuple[CroplandModel, tuple[str, str]]] = {}


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
    return _on_this_device(model)[0] if _worker_has_gpu() else GpuInference(model)


def local_gpu_count(model: CroplandModel) -> int:
    """CUDA devices this machine has for ``model`` (0 for a model that does not use one)."""
    if not uses_gpu(model):
        return 0
    import torch

    return torch.cuda.device_count()


def visible_device(i: int) -> str:
    """The ``CUDA_VISIBLE_DEVICES`` value for the i-th local GPU worker, within what this process may see: a worker
    beyond the devices this process was allowed (``CUDA_VISIBLE_DEVICES`` set) gets none, ``-1``, and runs on its
    CPU, never on a device another job was given."""
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is None:
        return str(i)
    allowed = [d.strip() for d in given.split(",") if d.strip()]
    return allowed[i] if i < len(allowed) else "-1"


def every_worker(client: Client) -> Mapping:
    """``client.scheduler_info()`` listing every worker: distributed 2025.x lists 5 unless asked for all, so a GPU
    worker listed sixth was missed (releases before take the argument as an ignored keyword and list all)."""
    return client.scheduler_info(n_workers=-1)


def cluster_has_gpu(scheduler_info: Mapping) -> bool:
    """True when any worker of the cluster (``every_worker``) offers the ``GPU`` resource."""
    return len(cpu_workers(scheduler_info)) < len(scheduler_info.get("workers", {}))


def cpu_workers(scheduler_info: Mapping) -> list[str]:
    """Addresses of the cluster's workers without the ``GPU`` resource."""
    return [address for address, w in scheduler_info.get("workers", {}).items()
            if not w.get("resources", {}).get(GPU_RESOURCE)]


@dataclass(frozen=True)
class GpuInference:
    """A ``CroplandModel`` that runs each window's inference as a task on a worker with a ``GPU`` resource."""

    model: CroplandModel
    # (device, precision) of the model each inference task ran, as its GPU worker said: CUDA in bf16 where the
    # worker sees a GPU, else its CPU in float32.
    ran: set[tuple[str, str]] = field(default_factory=set, compare=False)

    @property
    def name(self) -> str:
        """The wrapped model's name."""
        return self.model.name

    def describe(self) -> dict:
        """The wrapped model's description, with the devices and precisions its inference tasks ran in so far
        (``joined_kinds``)."""
        return {**self.model.describe(), **joined_kinds(inference_used(self))}

    @property
    def bands(self) -> tuple[str, ...]:
        """The bands the wrapped model reads."""
        return tuple(getattr(self.model, "bands", ()))

    @property
    def area_margins(self) -> AreaMargins:
        """The wrapped model's cultivated-area interval margins."""
        return model_margins(self.model)

    @property
    def read_context(self) -> tuple[int, int]:
        """The wrapped model's context around a window (``farmcredit.pipeline.context_window``)."""
        return model_read_context(self.model)

    def predict_proba(self, cube: SeasonCube, indices: Mapping[str, np.ndarray]) -> np.ndarray:
        """P(cropland) for the window, computed on a GPU worker (this thread waits for it)."""
        from distributed import get_client, get_worker

        client = get_client()
        # Kept on this worker: the GPU worker fetches it directly, the scheduler never carries it.
        [bands] = client.scatter([(cube.reflectance, cube.clear, tuple(cube.bands))], workers=[get_worker().address],
                                 direct=True, hash=False)
        future = client.submit(infer_on_gpu, self.model, bands, resources={GPU_RESOURCE: 1}, priority=10,
                               pure=False)
        try:
            probability, ran = future.result(timeout=INFERENCE_TIMEOUT_S)
        finally:
            future.release()
            bands.release()
        self.ran.add(ran)
        return probability


def infer_on_gpu(model: CroplandModel,
                 bands: tuple[np.ndarray, np.ndarray, tuple[str, ...]]) -> tuple[np.ndarray, tuple[str, str]]:
    """The inference task: the model on this worker's device, applied to one window's bands; with the device and
    precision it ran in."""
    reflectance, clear, names = bands
    here, ran = _on_this_device(model)
    return here.predict(reflectance, clear, names).crop_probability, ran


def inference_used(model: CroplandModel) -> list[dict[str, str]]:
    """Where and in what precision ``model``, as ``on_this_worker`` gave it, ran a partition's inference: one entry
    per kind (none when it sent no window to a GPU worker; ``unknown`` where a model's description does not say)."""
    if isinstance(model, GpuInference):
        kinds = sorted(model.ran)
    else:
        described = model.describe()
        kinds = [(described.get("device", "unknown"), described.get("precision", "unknown"))]
    return [{"device": device, "precision": precision} for device, precision in kinds]


def _on_this_device(model: CroplandModel) -> tuple[CroplandModel, tuple[str, str]]:
    """The model on this worker's device (``auto``), with that device and its precision."""
    key = model.describe()["hash"]
    if key not in _ON_DEVICE:
        moved = model.on_device("auto")
        [kind] = inference_used(moved)
        _ON_DEVICE[key] = moved, (kind["device"], kind["precision"])
    return _ON_DEVICE[key]


def _worker_has_gpu() -> bool:
    from distributed import get_worker

    try:
        return bool(get_worker().state.total_resources.get(GPU_RESOURCE))
    except ValueError:  # not on a worker (a plain call, e.g. in a test)
        return False
