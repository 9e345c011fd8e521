"""VLLMAdapter: the bench loop's InferenceAdapter over `vllm.LLM`, for the chat-template models.

What must match the transformers backend, and where it comes from:
- prompt text: the model's own adapter (`inner`, e.g. ChatAdapter) renders the processor's chat template;
  only its processor and generation config are loaded, never its weights (unless a LoRA must be merged);
- image bounds: the spec's processor kwargs go to the engine as `mm_processor_kwargs`;
- decoding: greedy `SamplingParams(temperature=0)` with the spec's max/min new tokens and repetition
  penalty; stop ids are `inner.stop_token_ids()`, the transformers adapter's own list;
- decoding to text: the engine returns token ids (detokenize=False) and `ModelAdapter.decode` turns them
  into text with the same tokenizer and stop rule, so the two backends' texts differ only if tokens do;
- weights: the same twin folder / hub revision; a PEFT fine-tune is merged with peft in this process and
  saved once into the cache (`lora: merged`, recorded), since vLLM's LoRA does not cover every module
  the twins train (vision tower, embeddings, head).
Per-request TTFT / time per output token come from vLLM's RequestStateStats (needs log stats on).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
from pathlib import Path
from types import SimpleNamespace

from harness.adapters.base import ModelAdapter, Prepared
from harness.adapters.protocol import Generation
from harness.errors import HarnessError
from harness.specs import Decoding, RunSpec

__all__ = ["VLLMAdapter", "engine_request_metrics"]

_MB = 1024 * 1024


def engine_request_metrics(output) -> dict:
    """engine_ttft_ms / engine_tpot_ms / engine_queue_ms of one RequestOutput (None where vLLM has none)."""
    stats = getattr(output, "metrics", None)
    if stats is None:
        return {"engine_ttft_ms": None, "engine_tpot_ms": None, "engine_queue_ms": None}
    n = int(getattr(stats, "num_generation_tokens", 0) or 0)
    first, last = getattr(stats, "first_token_ts", 0.0), getattr(stats, "last_token_ts", 0.0)
    ttft = getattr(stats, "first_token_latency", 0.0)
    queued, scheduled = getattr(stats, "queued_ts", 0.0), getattr(stats, "scheduled_ts", 0.0)
    return {
        "engine_ttft_ms": round(ttft * 1000.0, 4) if ttft else None,
        "engine_tpot_ms": round((last - first) * 1000.0 / (n - 1), 4) if n > 1 and last > first else None,
        "engine_queue_ms": round((scheduled - queued) * 1000.0, 4) if scheduled and queued else None,
    }


def _rss_mb() -> dict:
    """Resident memory of this process and its children (vLLM's engine core runs in a child process)."""
    import psutil

    me = psutil.Process()
    children = me.children(recursive=True)
    total = me.memory_info().rss
    for child in children:
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return {"self": me.memory_info().rss / _MB, "with_children": total / _MB, "children": len(children)}


class VLLMAdapter:
    """InferenceAdapter (harness/adapters/protocol.py) answering with a vLLM engine."""

    def __init__(self, inner: ModelAdapter, spec: RunSpec, cache: Path):
        self.inner = inner
        self.request = inner.request
        self.card = inner.card
        self.spec = spec
        self.engine = dict(spec.engine or {})
        self.cache = Path(cache)
        self.llm = None
        self.tokenizer = None
        self.weights_dir: str | None = None
        self.lora_mode = "none"
        self._rss_peak = None
        self._image_ids: set[int] = set()
        self._prompt_mismatch = 0

    # --- loading ------------------------------------------------------------------------------
    def load(self) -> None:
        req = self.request
        tuned = req.adapter_path or req.adapter_source
        if tuned and req.adapter_kind == "adapter":
            self.weights_dir, self.lora_mode = self._merged_weights(), "merged"
        elif tuned:  # complete fine-tuned weights
            self.weights_dir, self.lora_mode = tuned, "full"
        else:
            self.weights_dir = req.source
        self._load_prompting(self.weights_dir if self.lora_mode == "merged" else req.source)
        self._start_engine()

    def _load_prompting(self, source: str) -> None:
        """The inner adapter's processor and generation config, without its weights."""
        import copy

        import transformers

        inner, req = self.inner, self.request
        common = {"token": req.token, "trust_remote_code": self.card.trust_remote_code}
        revision = None if self.lora_mode == "merged" else req.revision
        if getattr(inner, "processor", None) is None:
            inner.processor = transformers.AutoProcessor.from_pretrained(
                source, revision=revision, **common, **copy.deepcopy(req.processor_kwargs))
            inner.tokenizer = inner.processor.tokenizer
        if inner.model is None:  # stop_token_ids() reads the generation config's eos ids
            config = transformers.GenerationConfig.from_pretrained(source, revision=revision, **common)
            inner.model = SimpleNamespace(generation_config=config, config=None)
        check = getattr(inner, "_check_pixel_bounds", None)  # Qwen2-VL: the bounds in effect (shared/MODELS.md)
        if check is not None:
            check()
        self.tokenizer = inner.tokenizer
        self._image_ids = set(inner.image_token_ids())

    def _merged_weights(self) -> str:
        """base + PEFT adapter merged with peft and saved under the cache once; returns the folder."""
        req = self.request
        adapter = Path(req.adapter_path or "")
        files = sorted(adapter.glob("adapter_*")) if adapter.is_dir() else []
        stamp = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
        key = hashlib.sha256(json.dumps([req.source, req.revision, req.adapter_path, req.adapter_source,
                                         req.adapter_revision, req.dtype, stamp]).encode()).hexdigest()[:16]
        target = self.cache / "vllm-merged" / key
        if (target / ".complete").exists():
            return str(target)
        inner = self.inner
        inner.load()  # weights + adapter through the transformers path (its key checks included)
        inner.merge_adapter()
        target.mkdir(parents=True, exist_ok=True)
        inner.model.save_pretrained(target)
        inner.processor.save_pretrained(target)
        (target / ".complete").write_text("ok")
        inner.model = None  # the engine loads its own copy; keep the processor
        gc.collect()
        return str(target)

    def _start_engine(self) -> None:
        try:
            import vllm
        except ImportError:
            raise HarnessError(f"{self.card.name}: --backend vllm needs the vllm package in this Python "
                               "(scripts/vllm-env.sh makes .venv-vllm; or --runner venv / docker)") from None
        e = self.engine
        cpu = not str(self.request.device).startswith("cuda")
        if cpu:  # the CPU backend's KV cache size (GiB); a GPU's comes from gpu_memory_utilization
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(e.get("kv_cache_space_gb", 1))
        kwargs = dict(
            model=self.weights_dir,
            revision=None if self.weights_dir != self.request.source else self.request.revision,
            dtype=self.spec.dtype,
            seed=self.spec.seed,
            max_model_len=e.get("max_model_len"),
            enforce_eager=bool(e.get("enforce_eager")),
            max_num_seqs=int(e.get("max_num_seqs", 256)),
            limit_mm_per_prompt={"image": 1, "video": 0},  # one chart per question
            mm_processor_kwargs=dict(self.request.processor_kwargs) or None,
            trust_remote_code=self.card.trust_remote_code,
            disable_log_stats=False,  # per-request metrics (RequestOutput.metrics) need the stats
        )
        if not cpu:
            kwargs["gpu_memory_utilization"] = float(e.get("gpu_memory_utilization", 0.9))
        try:
            self.llm = vllm.LLM(**kwargs)
        except (OSError, ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise HarnessError(f"{self.card.name}: vLLM cannot load {self.weights_dir}: {first}") from None
        self._sample_rss()

    # --- the bench loop's calls -----------------------------------------------------------------
    def prepare(self, examples: list, prompt_suffix: str) -> Prepared:
        requests = [{"prompt": self.inner.prompt_text(ex, prompt_suffix), "multi_modal_data": {"image": ex.image}}
                    for ex in examples]
        # Token counts are the engine's (its processor expands the image placeholders): filled by generate.
        return Prepared(inputs={"requests": requests}, prompt_tokens=[0] * len(examples),
                        image_tokens=[0] * len(examples))

    def sampling_params(self, decoding: Decoding):
        from vllm import SamplingParams

        if decoding.num_beams != 1:
            raise HarnessError(f"{self.card.name}: --backend vllm runs num_beams 1 only (vLLM's beam search is "
                               f"another API), got num_beams {decoding.num_beams}; use --backend transformers")
        sampled = bool(decoding.do_sample)
        return SamplingParams(
            n=1,
            temperature=(decoding.temperature if decoding.temperature is not None else 1.0) if sampled else 0.0,
            top_p=decoding.top_p if sampled and decoding.top_p is not None else 1.0,
            top_k=decoding.top_k if sampled and decoding.top_k is not None else 0,
            seed=self.spec.seed if sampled else None,
            max_tokens=decoding.max_new_tokens,
            min_tokens=decoding.min_new_tokens,
            repetition_penalty=decoding.repetition_penalty,
            stop_token_ids=self.stop_token_ids(),
            detokenize=False,  # text comes from ModelAdapter.decode, as in the transformers backend
        )

    def generate(self, prepared: Prepared, decoding: Decoding, on_step=None) -> Generation:
        import numpy as np

        outputs = self.llm.generate(prepared.inputs["requests"], self.sampling_params(decoding), use_tqdm=False)
        stop = self.stop_token_ids()
        rows, metrics = [], []
        for i, out in enumerate(outputs):
            completion = out.outputs[0]
            ids = list(completion.token_ids)
            # A stop id ends the row in the transformers backend's count; keep it if the engine dropped it.
            if completion.finish_reason == "stop" and isinstance(completion.stop_reason, int) \
                    and (not ids or ids[-1] != completion.stop_reason):
                ids.append(int(completion.stop_reason))
            rows.append(ids)
            prompt_ids = list(out.prompt_token_ids or [])
            prepared.prompt_tokens[i] = len(prompt_ids)
            prepared.image_tokens[i] = sum(1 for t in prompt_ids if t in self._image_ids)
            metrics.append(engine_request_metrics(out))
        width = max((len(r) for r in rows), default=0)
        # Padded with a stop id, which decode() cuts at: the padding is never counted as generated text.
        tokens = np.array([r + [stop[0]] * (width - len(r)) for r in rows], dtype=np.int64).reshape(len(rows), width)
        self._sample_rss()
        return Generation(tokens=tokens, request_metrics=tuple(metrics))

    def decode(self, generation: Generation) -> tuple[list[str], list[int]]:
        return ModelAdapter.decode(self, generation)

    def clean(self, text: str) -> str:
        return self.inner.clean(text)

    def stop_token_ids(self) -> list[int]:
        return self.inner.stop_token_ids()

    def merge_adapter(self) -> bool:
        return self.lora_mode == "merged"  # always merged before the engine loads (see the module docstring)

    # --- what the result records -------------------------------------------------------------------
    def _sample_rss(self) -> None:
        try:
            now = _rss_mb()
        except Exception:  # psutil missing or a child gone: the peak stays what it was
            return
        peak = self._rss_peak or now
        self._rss_peak = {k: max(peak[k], now[k]) for k in now}

    def _kv_cache(self) -> dict:
        """The engine's KV-cache reservation: blocks x block size x bytes per token (all layers, K and V)."""
        try:
            vconfig = self.llm.llm_engine.vllm_config
            cache, model = vconfig.cache_config, vconfig.model_config
            blocks, block_size = cache.num_gpu_blocks, cache.block_size
            per_token = (2 * model.get_num_layers(vconfig.parallel_config)
                         * model.get_num_kv_heads(vconfig.parallel_config) * model.get_head_size()
                         * _dtype_bytes(cache.cache_dtype, model.dtype))
        except Exception as exc:  # an engine version without these attributes
            return {"kv_cache_reserved_mb": None, "unavailable": f"{type(exc).__name__}: {exc}"}
        return {"kv_cache_reserved_mb": round(blocks * block_size * per_token / _MB, 3) if blocks else None,
                "kv_cache_blocks": blocks, "kv_cache_block_size": block_size,
                "kv_cache_tokens": blocks * block_size if blocks else None, "kv_bytes_per_token": per_token}

    def _weights_mb(self) -> float | None:
        folder = Path(str(self.weights_dir))
        files = list(folder.glob("*.safetensors")) if folder.is_dir() else []
        return round(sum(f.stat().st_size for f in files) / _MB, 3) if files else None

    def environment(self) -> dict:
        import vllm

        cpu = not str(self.request.device).startswith("cuda")
        memory = {
            **self._kv_cache(),
            "weights_mb": self._weights_mb(),
            "weights_how": "size of the *.safetensors files the engine loaded (what the model needs for its weights)",
            "kv_cache_how": ("VLLM_CPU_KVCACHE_SPACE reserved up front (engine.kv_cache_space_gb), not what the "
                             "requests used" if cpu else "gpu_memory_utilization's share of the GPU left after "
                             "the weights and activations, reserved up front, not what the requests used"),
        }
        if self._rss_peak is not None:
            memory.update({"rss_peak_mb_with_engine_children": round(self._rss_peak["with_children"], 1),
                           "rss_peak_mb_this_process": round(self._rss_peak["self"], 1),
                           "rss_how": "process RSS of the harness and its child processes (vLLM's engine core), "
                                      "sampled after loading and after every generate call"})
        return {
            "backend": "vllm",
            "vllm_version": vllm.__version__,
            "engine": dict(self.engine),
            "lora_mode": self.lora_mode,
            "adapter_kind": self.request.adapter_kind if (self.request.adapter_path or self.request.adapter_source)
            else None,
            "adapter_merged": self.lora_mode == "merged",
            "engine_weights": str(self.weights_dir),
            "engine_memory": memory,
            "param_dtype": self.spec.dtype,
            "processor_kwargs": dict(self.request.processor_kwargs),
            "stop_token_ids": self.stop_token_ids(),
        }


def _dtype_bytes(cache_dtype, model_dtype) -> int:
    name = str(cache_dtype if cache_dtype not in (None, "auto") else model_dtype).replace("torch.", "")
    return {"float32": 4, "float16": 2, "bfloat16": 2, "half": 2, "float": 4, "fp8": 1, "fp8_e4m3": 1,
            "fp8_e5m2": 1}.get(name, 2)
