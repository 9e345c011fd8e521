"""Peak memory from three sources, each named for what it measures.

- torch_max_allocated_mb / torch_max_reserved_mb: the CUDA caching allocator's peaks (tensors alive /
  memory held by the cache) after `reset_peak_memory_stats` at the start of the tracked block.
  torch_allocated_at_start_mb is what was already allocated then (weights, mostly).
- nvml_peak_used_mb: device-level used memory (all processes, CUDA context included) sampled in a
  background thread every `interval_s`; nvml_used_at_start_mb is the reading at the start.
  Per-process NVML figures are unreliable inside containers (PID namespaces), so none are reported.
- rss_peak_mb: this process's resident set size, sampled the same way (the CPU-side figure);
  rss_at_start_mb is the reading at the start (the allocator keeps freed memory, so in a sweep the
  start of a later run can already be high).

`report()` lists which figures were `available` and which were `unavailable`, with the reason.
"""

from __future__ import annotations

import os
import threading

__all__ = ["PEAK_KEYS", "MemoryTracker", "peak_memory"]

MB = 1024 * 1024
# The figure that stands for "peak memory" when one number is shown, most specific first: the tensors
# the model needed (allocator), else the whole device (NVML), else the process on the CPU (RSS).
PEAK_KEYS = ("torch_max_allocated_mb", "nvml_peak_used_mb", "rss_peak_mb")


def peak_memory(memory: dict | None) -> tuple[str | None, float | None]:
    """(key, MB) of the first available figure in PEAK_KEYS; (None, None) when none was measured.

    The one rule for every table and comparison, so two numbers side by side always name the same thing.
    """
    for key in PEAK_KEYS:
        if (memory or {}).get(key) is not None:
            return key, float(memory[key])
    return None, None


_PROCESS = None


def _rss_mb() -> float:
    global _PROCESS
    if _PROCESS is None or _PROCESS.pid != os.getpid():  # one handle per process (forks get their own)
        import psutil

        _PROCESS = psutil.Process()
    return _PROCESS.memory_info().rss / MB


class MemoryTracker:
    """Context manager; `result` (after exit) or `report()` (any time) gives the figures."""

    def __init__(self, device: str = "cpu", interval_s: float = 0.01):
        self.device = str(device)
        self.cuda = self.device.startswith("cuda")
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._nvml_peak: float | None = None
        self._nvml_start: float | None = None
        self._nvml_reason = "not a CUDA device" if not self.cuda else ""
        self._nvml_match = None
        self._torch_start: float | None = None
        self._rss_peak = 0.0
        self._rss_start = 0.0
        self._samples = 0
        self._nvml_handle = None
        self._thread: threading.Thread | None = None
        self.result: dict = {}

    def __enter__(self) -> MemoryTracker:
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._torch_start = torch.cuda.memory_allocated(self.device) / MB
            self._nvml_handle, self._nvml_match, self._nvml_reason = _nvml_handle(self.device)
            if self._nvml_handle is not None:
                self._nvml_start = self._nvml_used()
        self._rss_start = self._rss_peak = _rss_mb()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, name="memory-tracker", daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._read_once()
            self._stop.wait(self.interval_s)

    def _nvml_used(self) -> float | None:
        try:
            import pynvml

            return pynvml.nvmlDeviceGetMemoryInfo(self._nvml_handle).used / MB
        except Exception:  # a driver hiccup must not kill the run; the peak keeps what it saw
            return None

    def _read_once(self) -> None:
        rss = _rss_mb()
        used = self._nvml_used() if self._nvml_handle is not None else None
        with self._lock:
            self._samples += 1
            self._rss_peak = max(self._rss_peak, rss)
            if used is not None:
                self._nvml_peak = used if self._nvml_peak is None else max(self._nvml_peak, used)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)
        self._read_once()
        self.result = self.report()

    def report(self) -> dict:
        out: dict = {
            "rss_peak_mb": round(self._rss_peak, 1),
            "rss_at_start_mb": round(self._rss_start, 1),
            "sampling_interval_ms": self.interval_s * 1000,
            "samples_taken": self._samples,
        }
        available, unavailable = ["rss_peak_mb"], {}
        if self.cuda:
            import torch

            out["torch_max_allocated_mb"] = round(torch.cuda.max_memory_allocated(self.device) / MB, 1)
            out["torch_max_reserved_mb"] = round(torch.cuda.max_memory_reserved(self.device) / MB, 1)
            out["torch_allocated_at_start_mb"] = round(self._torch_start or 0.0, 1)
            available += ["torch_max_allocated_mb", "torch_max_reserved_mb"]
        else:
            unavailable["torch_max_allocated_mb"] = unavailable["torch_max_reserved_mb"] = "not a CUDA device"
        if self._nvml_peak is not None:
            out["nvml_peak_used_mb"] = round(self._nvml_peak, 1)
            out["nvml_used_at_start_mb"] = round(self._nvml_start, 1) if self._nvml_start is not None else None
            out["nvml_device_match"] = self._nvml_match
            available.append("nvml_peak_used_mb")
        else:
            unavailable["nvml_peak_used_mb"] = self._nvml_reason or "no NVML reading"
        out["available"] = available
        out["unavailable"] = sorted(unavailable)
        out["unavailable_reasons"] = unavailable
        return out


def _nvml_handle(device: str):
    """(handle, how it was matched, reason if none) for the NVML device behind a torch device.

    NVML numbers devices physically while torch numbers the visible ones (CUDA_VISIBLE_DEVICES), so
    match by UUID first, then PCI bus id, then the visible-device mapping.
    """
    try:
        import pynvml
    except ImportError:
        return None, None, "pynvml (nvidia-ml-py) not installed"
    try:
        import torch

        pynvml.nvmlInit()
        index = torch.device(device).index
        index = torch.cuda.current_device() if index is None else index
        props = torch.cuda.get_device_properties(index)
    except Exception as exc:  # NVML missing in the container, driver mismatch
        return None, None, f"NVML unavailable ({type(exc).__name__}: {exc})"
    uuid = str(getattr(props, "uuid", "") or "")
    if uuid:
        for candidate in (uuid, f"GPU-{uuid}", f"MIG-{uuid}"):
            try:
                return pynvml.nvmlDeviceGetHandleByUUID(candidate), "uuid", ""
            except Exception:
                continue
    if getattr(props, "pci_bus_id", None) is not None:
        domain, device_id = getattr(props, "pci_domain_id", 0), getattr(props, "pci_device_id", 0)
        bus = f"{domain:08x}:{props.pci_bus_id:02x}:{device_id:02x}.0"
        try:
            return pynvml.nvmlDeviceGetHandleByPciBusId(bus), "pci_bus_id", ""
        except Exception:
            pass
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    physical = int(visible[index]) if index < len(visible) and visible[index].isdigit() else index
    try:
        return pynvml.nvmlDeviceGetHandleByIndex(physical), "index", ""
    except Exception as exc:
        return None, None, f"no NVML device for {device} ({type(exc).__name__})"
