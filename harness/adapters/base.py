"""ModelAdapter, the base of every family, and a shared implementation for processor-based HF models.

An adapter hides one model family's prompt format, preprocessing, generation and label masking
behind the same few methods, so the bench loop and the fine-tune recipe are written once. What each
of them calls is declared in protocol.py (InferenceAdapter, TrainingAdapter).
"""

from __future__ import annotations

import copy
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from harness.adapters.protocol import Generation, InferenceAdapter, OnStep, StepCallback, TrainingAdapter
from harness.errors import HarnessError
from harness.specs import Decoding, ModelCard

__all__ = ["Generation", "LoadRequest", "ModelAdapter", "Prepared", "ProcessorAdapter", "torch_dtype"]


def torch_dtype(name: str):
    import torch

    try:
        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]
    except KeyError:
        raise HarnessError(f"unknown dtype '{name}' (use float32, float16 or bfloat16)") from None


@dataclass(frozen=True)
class LoadRequest:
    """Where to load weights from and how. `token` is read from HF_TOKEN and never stored."""

    source: str  # hub id or local directory
    revision: str | None
    dtype: str
    device: str
    adapter_path: str | None = None  # local fine-tune output (PEFT adapter or full checkpoint)
    adapter_source: str | None = None  # hub id of a published fine-tune
    adapter_revision: str | None = None
    adapter_kind: str = "adapter"  # "adapter" (PEFT on the base) or "full" (complete weights)
    processor_kwargs: dict = field(default_factory=dict)
    quantization: str | None = None  # "nf4" for QLoRA training
    attn_implementation: str | None = None  # e.g. sdpa or eager; None: the library's default

    @property
    def token(self) -> str | None:
        return os.environ.get("HF_TOKEN") or None


@dataclass
class Prepared:
    """Model inputs for one batch, plus counts that explain its cost."""

    inputs: dict[str, Any]
    prompt_tokens: list[int]
    image_tokens: list[int]


class ModelAdapter(InferenceAdapter, TrainingAdapter):
    """One model family. Subclasses implement loading, prompting, generation and label masking."""

    family: str = ""

    def __init__(self, card: ModelCard, request: LoadRequest):
        self.card = card
        self.request = request
        self.model: Any = None
        self.tokenizer: Any = None
        self.adapter_merged = False

    # --- inference -------------------------------------------------------------------------
    def load(self) -> None:
        raise NotImplementedError

    def prepare(self, examples: list, prompt_suffix: str) -> Prepared:
        raise NotImplementedError

    def generate(self, prepared: Prepared, decoding: Decoding, on_step: OnStep | None = None) -> Generation:
        """The new tokens (or texts); calls `on_step` once per decoding step, the first after the prefill."""
        raise NotImplementedError

    def decode(self, generation: Generation) -> tuple[list[str], list[int]]:
        """Texts and the number of tokens each sample generated (up to and including its end token)."""
        if generation.tokens is None:  # the model produced text itself
            return list(generation.texts), list(generation.counts)
        tok = self.tokenizer
        stop = set(self.stop_token_ids())
        texts, counts = [], []
        for row in generation.tokens.tolist():
            # Up to and including the first stop token; padding after it is not generated text.
            n = next((i + 1 for i, token in enumerate(row) if token in stop), len(row))
            kept = row[:n]
            counts.append(n)
            texts.append(tok.decode([t for t in kept if t not in stop], skip_special_tokens=True))
        return texts, counts

    def clean(self, text: str) -> str:
        """Turn raw model output into the prediction that is scored."""
        return text.strip()

    def stop_token_ids(self) -> list[int]:
        raise NotImplementedError

    # --- training ---------------------------------------------------------------------------
    @classmethod
    def finetune_refusal(cls, card) -> str | None:
        """Why this family cannot be fine-tuned (checked before any weights load), or None."""
        return None

    def training_batch(self, examples: list, prompt_suffix: str, max_length: int) -> dict:
        raise NotImplementedError

    def training_loss(self, batch: dict):
        """The loss of one `training_batch` (already on the device); a model-specific forward may override."""
        return self.model(**batch).loss

    def enable_gradient_checkpointing(self) -> None:
        if hasattr(self.model, "gradient_checkpointing_enable"):
            self.model.gradient_checkpointing_enable()

    def default_lora_targets(self) -> list[str] | str:
        return "all-linear"

    def save_finetuned(self, out_dir) -> None:
        """Write what the fine-tune produced: PEFT adapter files, or complete weights + processor."""
        self.model.save_pretrained(out_dir)
        from peft import PeftModel

        if not isinstance(self.model, PeftModel):
            saver = getattr(self, "processor", None) or self.tokenizer
            saver.save_pretrained(out_dir)

    def trainable_module(self):
        """The module LoRA wraps and the optimizer trains (the whole model by default)."""
        return self.model

    def merge_adapter(self) -> bool:
        """Fold a PEFT adapter into the base weights (no extra LoRA matmuls at run time); True if merged.

        Complete fine-tuned weights and the base model have nothing to merge. 4-bit weights cannot
        take a merge without rounding the adapter away, so that is refused.
        """
        try:
            from peft import PeftModel
        except ImportError:
            return self.adapter_merged
        if isinstance(self.model, PeftModel) and not self.adapter_merged:
            if _quantization(self.model, None):
                raise HarnessError(f"{self.card.name}: cannot merge a LoRA adapter into quantised weights; "
                                   "bench without --merge-adapter or load the base in 16 bits")
            self._merged_lora = _lora_summary(self.model)
            self.model = self.model.merge_and_unload()
            self.model.eval()
            self.adapter_merged = True
        return self.adapter_merged

    def environment(self) -> dict:
        """Facts about the loaded model that change its speed, for the run manifest."""
        model = self.model
        config = getattr(model, "config", None)
        req = self.request
        tuned = req.adapter_path or req.adapter_source
        dominant, dtypes = _param_dtypes(model)
        return {
            "attn_implementation": getattr(config, "_attn_implementation", None),
            "attn_implementation_per_module": _attn_per_module(model),
            "adapter_kind": req.adapter_kind if tuned else None,
            "adapter_merged": self.adapter_merged,
            "lora": _lora_summary(model) or getattr(self, "_merged_lora", None),
            "quantization": _quantization(model, req.quantization),
            "param_dtype": dominant,
            "param_dtypes": dtypes,
            "processor_kwargs": dict(req.processor_kwargs),
        }


def _attn_per_module(model) -> dict:
    """`_attn_implementation` of every sub-model with its own config (text and vision towers can differ)."""
    out: dict = {}
    for module in getattr(model, "modules", lambda: [])():
        if not hasattr(module, "base_model_prefix"):  # only (sub-)models, not their layers
            continue
        impl = getattr(getattr(module, "config", None), "_attn_implementation", None)
        if impl is not None:
            out.setdefault(type(module).__name__, impl)
    return out


def _quantization(model, requested: str | None) -> str | None:
    """What the loaded weights actually are: e.g. 'bitsandbytes:nf4', else what was requested."""
    qc = getattr(getattr(model, "config", None), "quantization_config", None)
    if qc is None:
        return requested
    data = qc.to_dict() if hasattr(qc, "to_dict") else dict(qc)
    method = str(data.get("quant_method", "quantized"))
    if data.get("load_in_4bit"):
        return f"{method}:{data.get('bnb_4bit_quant_type', '4bit')}"
    if data.get("load_in_8bit"):
        return f"{method}:int8"
    return method


def _param_dtypes(model) -> tuple[str | None, dict]:
    """(dominant parameter dtype, {dtype: parameter count}); LoRA weights may differ from the base's."""
    counts: dict[str, int] = {}
    for param in getattr(model, "parameters", lambda: [])():
        name = str(param.dtype).replace("torch.", "")
        counts[name] = counts.get(name, 0) + param.numel()
    return (max(counts, key=counts.get) if counts else None), counts


def _lora_summary(model) -> dict | None:
    config = getattr(model, "peft_config", None)
    if not isinstance(config, dict) or not config:
        return None
    first = next(iter(config.values()))
    targets = getattr(first, "target_modules", None)
    return {
        "r": getattr(first, "r", None),
        "alpha": getattr(first, "lora_alpha", None),
        "target_modules": sorted(targets) if isinstance(targets, (set, list, tuple)) else targets,
    }


class ProcessorAdapter(ModelAdapter):
    """Shared code for models driven by an HF processor and `generate` (Qwen2-VL, Idefics3)."""

    model_class = "AutoModelForImageTextToText"
    # Regex -> replacement on adapter-file keys (peft applies it after stripping `base_model.model.`):
    # adapters saved under an older module layout of the family's model class.
    adapter_key_mapping: dict[str, str] = {}

    # Subclasses: prompt text (with the generation prompt) and the text that follows it in training.
    def prompt_text(self, example, prompt_suffix: str) -> str:
        raise NotImplementedError

    def answer_text(self, answer: str) -> str:
        raise NotImplementedError

    def image_token_ids(self) -> list[int]:
        """Ids of every image-related token; never labelled."""
        raise NotImplementedError

    def processor_call_kwargs(self) -> dict:
        return {}

    def load(self) -> None:
        import transformers

        req = self.request
        common = {"revision": req.revision, "token": req.token, "trust_remote_code": self.card.trust_remote_code}
        # A deep copy: some image processors write the hub file's values into a passed `size` dict.
        with _gated_as_one_line(req.source, req.token):
            self.processor = transformers.AutoProcessor.from_pretrained(
                req.source, **common, **copy.deepcopy(req.processor_kwargs)
            )
        self.tokenizer = self.processor.tokenizer
        model_cls = getattr(transformers, self.model_class)
        kwargs = model_load_kwargs(req)
        if req.adapter_kind == "full" and (req.adapter_path or req.adapter_source):
            source, revision = req.adapter_path or req.adapter_source, req.adapter_revision
        else:
            source, revision = req.source, req.revision
        model = model_cls.from_pretrained(source, **{**common, "revision": revision}, **kwargs)
        if req.quantization != "nf4":
            model = model.to(req.device)
        if req.adapter_kind == "adapter" and (req.adapter_path or req.adapter_source):
            model = self._load_peft_adapter(model, req.adapter_path or req.adapter_source)
        model.eval()
        self.model = model

    def _load_peft_adapter(self, model, source: str):
        """Wrap `model` with the PEFT adapter at `source`; every key of the file must land on the model.

        `PeftModel.from_pretrained` only warns about missing keys and keeps LoRA at its initial value
        (B = 0: the base model, scored as the fine-tune). It also drops the unexpected keys, so the
        wrapper is built here and `load_adapter`'s result is checked.
        """
        from peft import MODEL_TYPE_TO_PEFT_MODEL_MAPPING, PeftConfig, PeftModel

        req = self.request
        hub = {"revision": req.adapter_revision, "token": req.token}
        config = PeftConfig.from_pretrained(source, **hub)
        config.inference_mode = True
        wrapped = MODEL_TYPE_TO_PEFT_MODEL_MAPPING.get(config.task_type, PeftModel)(model, config)
        # peft's own default mapping, then the family's mapping from older module layouts.
        key_mapping = {**getattr(model, "_checkpoint_conversion_mapping", {}), **self.adapter_key_mapping}
        result = wrapped.load_adapter(source, "default", key_mapping=key_mapping or None, **hub)
        _check_adapter_keys(self.card.name, source, result)
        return wrapped

    def _batch(self, texts: list[str], examples: list, padding_side: str) -> dict:
        # Idefics3's processor ignores padding_side: set it on the tokenizer (shared/MODELS.md).
        self.tokenizer.padding_side = padding_side
        images = [[ex.image] for ex in examples]
        return self.processor(
            text=texts, images=images, padding=True, return_tensors="pt", **self.processor_call_kwargs()
        )

    def prepare(self, examples: list, prompt_suffix: str) -> Prepared:
        texts = [self.prompt_text(ex, prompt_suffix) for ex in examples]
        batch = self._batch(texts, examples, "left")
        image_ids = set(self.image_token_ids())
        mask = batch["attention_mask"].bool()
        ids = batch["input_ids"]
        image_tokens = [int(sum(1 for t in row[m].tolist() if t in image_ids)) for row, m in zip(ids, mask)]
        prompt_tokens = [int(m.sum()) for m in mask]
        inputs = {k: v.to(self.request.device) if hasattr(v, "to") else v for k, v in batch.items()}
        return Prepared(inputs=inputs, prompt_tokens=prompt_tokens, image_tokens=image_tokens)

    def generate(self, prepared: Prepared, decoding: Decoding, on_step: OnStep | None = None) -> Generation:
        import torch
        from transformers import GenerationConfig

        config = GenerationConfig(
            **decoding.to_dict(),
            eos_token_id=self.stop_token_ids(),
            pad_token_id=self.tokenizer.pad_token_id,
        )
        steps = StepCallback(on_step)
        with torch.inference_mode():
            out = self.model.generate(
                **prepared.inputs, generation_config=config, stopping_criteria=steps.criteria()
            )
        return Generation(tokens=out[:, prepared.inputs["input_ids"].shape[1] :], step_times=tuple(steps.times))

    def training_batch(self, examples: list, prompt_suffix: str, max_length: int) -> dict:
        from harness.train.masking import label_answer_suffix

        answers = [self.answer_text(ex.answer) for ex in examples]
        texts = [self.prompt_text(ex, prompt_suffix) + a for ex, a in zip(examples, answers)]
        batch = self._batch(texts, examples, "right")
        length = batch["input_ids"].shape[1]
        if length > max_length:
            raise HarnessError(
                f"example {examples[0].id}: {length} tokens exceed max_length {max_length}; "
                "raise max_length or bound the image size (truncation would cut image tokens)"
            )
        suffixes = [self.tokenizer(a, add_special_tokens=False)["input_ids"] for a in answers]
        batch["labels"] = label_answer_suffix(
            batch["input_ids"], batch["attention_mask"], suffixes, self.image_token_ids(), [ex.id for ex in examples]
        )
        return dict(batch)


@contextmanager
def _gated_as_one_line(source: str, token: str | None):
    """The hub refusing a gated repo (no token, or a token whose account has not accepted the licence)."""
    from huggingface_hub.errors import GatedRepoError

    try:
        yield
    except (GatedRepoError, OSError) as exc:  # transformers re-raises the hub's error as an OSError
        if not isinstance(exc, GatedRepoError) and "gated" not in str(exc).lower():
            raise
        state = "HF_TOKEN is set but its account has no access" if token else "set HF_TOKEN"
        raise HarnessError(f"{source} is gated: {state} (accept the licence at https://huggingface.co/{source})"
                           ) from None


def _check_adapter_keys(model_name: str, source: str, result, shown: int = 3) -> None:
    """One-line error if the adapter file and the model disagree on any key (names the first few)."""
    # peft inserts the adapter name into each key; show them as the file spells them.
    missing = [k.replace(".default.", ".") for k in result.missing_keys]
    unexpected = [k.replace(".default.", ".") for k in result.unexpected_keys]
    if not missing and not unexpected:
        return
    parts = [f"{len(keys)} {what} (e.g. {', '.join(keys[:shown])})"
             for what, keys in (("missing key(s)", missing), ("unexpected key(s)", unexpected)) if keys]
    raise HarnessError(f"{model_name}: adapter {source} does not fit the model: {'; '.join(parts)}; "
                       "it was saved for another model or module layout")


def model_load_kwargs(req: LoadRequest) -> dict[str, Any]:
    """`from_pretrained` kwargs for the weights' dtype, quantisation and placement.

    A 4-bit model is placed while it loads and cannot be moved afterwards, so it gets
    device_map={"": device}: without it bitsandbytes quantises onto the current CUDA device (cuda:0)
    while the inputs go to `req.device` (e.g. cuda:1). Other models load on the CPU, then move.
    """
    kwargs: dict[str, Any] = {"dtype": torch_dtype(req.dtype)}
    if req.attn_implementation:
        kwargs["attn_implementation"] = req.attn_implementation
    if req.quantization == "nf4":
        kwargs["quantization_config"] = _nf4_config(req.dtype, req.device)
        kwargs["device_map"] = {"": str(req.device)}
    return kwargs


def _nf4_config(dtype: str, device: str):
    if not str(device).startswith("cuda"):
        raise HarnessError("QLoRA (4-bit nf4) needs a CUDA GPU and bitsandbytes; use method 'lora' on this device")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch_dtype(dtype),
    )
