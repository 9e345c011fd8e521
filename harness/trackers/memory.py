"""Peak memory from three sources, each named for what it measures.

- torch_max_allocated_mb / torch_max_reserved_mb: the CUDA caching allocator's peaks after a reset.
- nvml_peak_used_mb: device-level used memory sampled in a background thread (all processes).
- rss_peak_mb: this process's peak resident set size (the CPU-side figure).
"""

from __future__ import annotations

import threading

__all__ = ["MemoryTracker"]

MB = 1024 * 1024


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / MB


class MemoryTracker:
    """Context manager; `report()` returns only the figures that were available, plus which were not."""

    def __init__(self, device: str = "cpu", interval_s: float = 0.01):
        self.device = str(device)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._nvml_peak: float | None = None
        self._rss_peak = 0.0
        self._nvml_handle = None
        self._thread: threading.Thread | None = None
        self.result: dict = {}

    def __enter__(self) -> MemoryTracker:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._nvml_handle = _nvml_handle(self.device)
        self._rss_peak = _rss_mb()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._read_once()
            self._stop.wait(self.interval_s)

    def _read_once(self) -> None:
        self._rss_peak = max(self._rss_peak, _rss_mb())
        if self._nvml_handle is not None:
            import pynvml

            used = pynvml.nvmlDeviceGetMemoryInfo(self._nvml_handle).used / MB
            self._nvml_peak = used if self._nvml_peak is None else max(self._nvml_peak, used)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._read_once()
        self.result = self.report()

    def report(self) -> dict:
        out: dict = {"rss_peak_mb": round(self._rss_peak, 1), "sampling_interval_ms": self.interval_s * 1000}
        unavailable = []
        if self.device.startswith("cuda"):
            import torch

            out["torch_max_allocated_mb"] = round(torch.cuda.max_memory_allocated() / MB, 1)
            out["torch_max_reserved_mb"] = round(torch.cuda.max_memory_reserved() / MB, 1)
        else:
            unavailable += ["torch_max_allocated_mb", "torch_max_reserved_mb"]
        if self._nvml_peak is not None:
            out["nvml_peak_used_mb"] = round(self._nvml_peak, 1)
        else:
            unavailable.append("nvml_peak_used_mb")
        out["unavailable"] = unavailable
        return out


def _nvml_handle(device: str):
    try:
        import pynvml

        pynvml.nvmlInit()
        index = int(device.split(":")[1]) if ":" in device else 0
        return pynvml.nvmlDeviceGetHandleByIndex(index)
    except Exception:  # NVML missing in the container or driver mismatch: report it as unavailable
        return None
