"""Moondream2, 2025 revision family (remote code `HfMoondream`): benchmark only, one sample at a time.

`HfMoondream.query` samples (temperature 0.5) unless told otherwise, so every call passes the run's
decoding explicitly: `settings={"temperature": 0, "max_tokens": N, "variant": None}` for greedy.
There is no batched generation: a batch of N runs N queries in a row, and `--batch-size 1` gives the
honest latency.
Fine-tuning is refused: these revisions use prefix-LM attention (BOS + 729 image positions attend
bidirectionally), which a plain causal-mask training loop would silently get wrong.
"""

from __future__ import annotations

from contextlib import contextmanager

from harness.adapters.base import ModelAdapter, Prepared
from harness.adapters.moondream import dtype_kwarg, refuse_attn_override, require_environment
from harness.adapters.protocol import Generation, OnStep
from harness.errors import HarnessError
from harness.progress import log
from harness.specs import Decoding

__all__ = ["Moondream2025Adapter"]

REFUSAL = (
    "{name}: fine-tuning the 2025 Moondream revisions is not supported: their text model uses prefix-LM "
    "attention (the first 730 positions, BOS + 729 image tokens, attend to each other bidirectionally), "
    "and training it with the plain causal mask of this recipe would silently train a different model. "
    "Fine-tune the 2024 family instead (`harness finetune moondream`)."
)


class Moondream2025Adapter(ModelAdapter):
    family = "moondream2025"

    def load(self) -> None:
        import transformers

        req = self.request
        require_environment(self.card, req)
        refuse_attn_override(self.card, req)
        if req.adapter_path or req.adapter_source or req.quantization:
            raise HarnessError(REFUSAL.format(name=self.card.name))
        model = transformers.AutoModelForCausalLM.from_pretrained(
            req.source, revision=req.revision, token=req.token, trust_remote_code=True, **dtype_kwarg(req.dtype)
        )
        inner = getattr(model, "model", None)
        if inner is None or not hasattr(model, "query") or not hasattr(inner, "tokenizer"):
            raise HarnessError(f"{self.card.name}: {req.source}@{req.revision} is not the 2025 HfMoondream API "
                               "(.model.query); 2024 revisions use the moondream card")
        self.model = model.to(req.device).eval()
        self.tokenizer = inner.tokenizer  # a `tokenizers.Tokenizer`, not a transformers tokenizer
        self._warned_batch = False

    # --- inference ----------------------------------------------------------------------------
    def _image_positions(self) -> int | None:
        vision = getattr(self.model.model.config, "vision", None)
        if vision is None:
            return None
        return (vision.crop_size // vision.enc_patch_size) ** 2

    def prepare(self, examples: list, prompt_suffix: str) -> Prepared:
        questions = [ex.query + prompt_suffix for ex in examples]
        template = self.model.model.config.tokenizer.templates["query"]
        n_image = self._image_positions() or 0
        # As `query` builds it (2025-06 code on): BOS + image, then prefix + question + suffix, and the
        # suffix appended once more when not reasoning (the 2025-01/04 code appended it once).
        prompt_tokens = [1 + n_image + len(template["prefix"]) + len(self.tokenizer.encode(q).ids)
                         + 2 * len(template["suffix"]) for q in questions]
        return Prepared(inputs={"images": [ex.image for ex in examples], "questions": questions},
                        prompt_tokens=prompt_tokens, image_tokens=[n_image] * len(examples))

    @staticmethod
    def settings(decoding: Decoding) -> dict:
        """The run's decoding as `query` settings; refuses what `query` cannot do."""
        unsupported = []
        if decoding.num_beams != 1:
            unsupported.append(f"num_beams={decoding.num_beams}")
        if decoding.repetition_penalty != 1.0:
            unsupported.append(f"repetition_penalty={decoding.repetition_penalty}")
        if decoding.min_new_tokens:
            unsupported.append(f"min_new_tokens={decoding.min_new_tokens}")
        if decoding.do_sample and decoding.top_k:
            unsupported.append(f"top_k={decoding.top_k}")
        if unsupported:
            raise HarnessError(f"moondream2025: HfMoondream.query cannot decode with {', '.join(unsupported)}")
        # "variant": None (the base weights): the 2025-06 `encode_image(image, settings)` reads
        # settings["variant"] whenever settings are given, so a dict without it is a KeyError there.
        settings = {"max_tokens": decoding.max_new_tokens, "temperature": 0, "variant": None}
        if decoding.do_sample:
            settings["temperature"] = decoding.temperature if decoding.temperature is not None else 1.0
            settings["top_p"] = decoding.top_p if decoding.top_p is not None else 1.0
        return settings

    @contextmanager
    def _instrumented(self, on_step: OnStep | None, counts: list[int], step_times: list):
        """Count sampled tokens and call `on_step` from the remote model's own prefill/decode steps.

        Uses the 2025 releases' `_prefill_prompt` (prompt forward + first token) and `_decode_one_tok`
        (one step) on this instance only; without them the counts fall back to re-tokenizing.
        """
        inner = self.model.model
        names = ("_prefill_prompt", "_decode_one_tok")
        if not all(hasattr(inner, n) for n in names):
            yield False
            return
        originals = {n: getattr(inner, n) for n in names}

        def wrap(fn):
            def step(*args, **kwargs):
                out = fn(*args, **kwargs)
                counts[-1] += 1
                if on_step is not None:
                    step_times.append(on_step())
                return out
            return step

        for n in names:
            setattr(inner, n, wrap(originals[n]))
        try:
            yield True
        finally:
            for n in names:
                delattr(inner, n)  # back to the class methods

    def generate(self, prepared: Prepared, decoding: Decoding, on_step: OnStep | None = None) -> Generation:
        """Answers and token counts, one `query` per sample (no batched generation upstream)."""
        import torch

        settings = self.settings(decoding)
        images, questions = prepared.inputs["images"], prepared.inputs["questions"]
        if len(images) > 1 and not self._warned_batch:
            log(f"warning: {self.card.name} has no batched generation; a batch of {len(images)} runs "
                f"{len(images)} queries in a row (use --batch-size 1 for per-sample latency)")
            self._warned_batch = True
        # Step timing only means something for one sample per batch.
        on_step = on_step if len(images) == 1 else None
        answers, counts, step_times = [], [], []
        for image, question in zip(images, questions):
            counts.append(0)
            with self._instrumented(on_step, counts, step_times) as counted, torch.inference_mode():
                # HfMoondream.query (not .model.query): the wrapper sets up the KV caches first.
                answer = self.model.query(image, question, settings=settings)["answer"]
            if not counted:
                counts[-1] = len(self.tokenizer.encode(answer).ids)
            # At the max_tokens limit the loop samples one token it never emits.
            counts[-1] = min(counts[-1], settings["max_tokens"])
            answers.append(answer)
        return Generation(texts=tuple(answers), counts=tuple(counts), step_times=tuple(step_times))

    def clean(self, text: str) -> str:
        return text.strip()  # what HfMoondream.answer_question returns

    def stop_token_ids(self) -> list[int]:
        return [self.model.model.config.tokenizer.eos_id]

    def environment(self) -> dict:
        env = super().environment()
        env["batching"] = "none: one query per sample"
        env["query_settings_explicit"] = True
        return env

    # --- training: refused --------------------------------------------------------------------
    @classmethod
    def finetune_refusal(cls, card) -> str | None:
        return REFUSAL.format(name=card.name)

    def trainable_module(self):
        raise HarnessError(REFUSAL.format(name=self.card.name))

    def training_batch(self, examples: list, prompt_suffix: str, max_length: int) -> dict:
        raise HarnessError(REFUSAL.format(name=self.card.name))
