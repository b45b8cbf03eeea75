"""``lqcdml devices``: what a job sees (torch, CUDA devices, the scheduler's GPU variables,
and the path each compiled CPU kernel takes: ``kernels.report``; nothing is built)."""

from __future__ import annotations

import os
import platform

import torch

from ..kernels.report import report

__all__ = ["devices"]

_ENV = ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID", "SLURM_JOB_GPUS", "SLURM_GPUS_ON_NODE", "SLURM_STEP_GPUS")


def devices() -> dict:
    """Host, torch build, visible CUDA devices, the scheduler's GPU variables and the kernels'
    paths, as JSON data."""
    cuda = torch.cuda.is_available()
    return {
        "host": platform.node(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": cuda,
        "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "threads": torch.get_num_threads(),
        "environment": {k: os.environ[k] for k in _ENV if k in os.environ},
        "kernels": report(),
    }
