"""Moondream2, 2024 revision family (remote code `Moondream`): bench and full fine-tune of the text model.

The prompt is built the official way (`Moondream.input_embeds` / `batch_answer` of the 2024-07-23
release): [BOS embedding, image embeddings, tokens of "\\n\\nQuestion: {q}\\n\\nAnswer:"], batches
left-padded with copies of the BOS embedding under a zero attention mask. Generation calls
`text_model.generate(inputs_embeds=...)` directly so `on_step` (the bench's StepTimer) sees every step; the vision
encoder runs inside `generate`, so `prefill_ms` includes it as it does for processor-based models.

Fine-tuning follows the official notebook: the vision encoder is frozen under no_grad, the Phi text
model is trained in full, labels are -100 on BOS, image and question positions and the answer is
labelled as " {answer}<|endoftext|>" (the tokenizer's eos, looked up, never hard-coded).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.adapters.base import ModelAdapter, Prepared, torch_dtype
from harness.adapters.protocol import Generation, OnStep, StepCallback
from harness.errors import HarnessError
from harness.progress import log
from harness.specs import Decoding

__all__ = ["PROMPT", "Moondream2Adapter", "dtype_kwarg", "refuse_attn_override", "require_environment"]

PROMPT = "<image>\n\nQuestion: {question}\n\nAnswer:"


def dtype_kwarg(dtype: str) -> dict:
    """`dtype=` on transformers >= 4.56, `torch_dtype=` before (the 2024 container runs 4.48)."""
    import transformers
    from packaging.version import Version

    key = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
    return {key: torch_dtype(dtype)}


def refuse_attn_override(card, request) -> None:
    """Moondream's remote code picks its own attention: an attn_implementation setting would be recorded and ignored."""
    if request.attn_implementation:
        raise HarnessError(f"{card.name}: attn_implementation={request.attn_implementation} is not supported: the "
                           "remote code chooses its own attention (drop --set attn_implementation)")


def require_environment(card, request) -> None:
    """Refuse to run real remote code outside its pinned environment (twins are version-neutral)."""
    if Path(request.source).is_dir() and (Path(request.source) / ".complete").exists():
        return  # an offline twin built by this harness
    from harness.doctor import check_card

    problems = check_card(card)
    if problems:
        raise HarnessError(f"{card.name}: wrong environment for its remote code: " + "; ".join(problems)
                           + f" (see `harness doctor {card.name}`, or use the {card.image or card.name} image)")


def strip_auto_map_repo(config_path: Path) -> None:
    """Drop the `repo--` prefix that loading by hub id puts on auto_map entries (transformers 4.x).

    With the prefix, a reload takes the code from that repo (at `main` unless code_revision is
    given) and ignores the .py files saved beside the weights; without it, those files are used.
    """
    import json

    config = json.loads(config_path.read_text())
    auto_map = config.get("auto_map") or {}
    if any("--" in str(v) for v in auto_map.values()):
        config["auto_map"] = {k: v.split("--", 1)[1] if isinstance(v, str) and "--" in v else v
                              for k, v in auto_map.items()}
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def generation_interface(text_model) -> str:
    """Where the text model's per-step inputs come from: its own remote code, or transformers'.

    The 2024 release defines `prepare_inputs_for_generation` in its own modeling_phi.py; the twin does
    so only under transformers < 4.50 (moondream_remote/modeling_phi.py). The docker CI checks it.
    """
    fn = type(text_model).prepare_inputs_for_generation
    where = "transformers" if fn.__module__.startswith("transformers.") else "remote"
    return f"{where}:{fn.__module__}.{fn.__qualname__}"


class Moondream2Adapter(ModelAdapter):
    family = "moondream2"

    # --- loading ------------------------------------------------------------------------------
    def load(self) -> None:
        import transformers

        req = self.request
        require_environment(self.card, req)
        refuse_attn_override(self.card, req)
        if req.quantization:
            raise HarnessError(f"{self.card.name}: {req.quantization} quantisation is not supported; "
                               "the official recipe fine-tunes the full text model (method full)")
        tuned = req.adapter_path or req.adapter_source
        if tuned and req.adapter_kind != "full":
            raise HarnessError(f"{self.card.name}: fine-tunes are complete models (kind 'full'), "
                               f"not PEFT adapters: {tuned}")
        source, revision = (tuned, req.adapter_revision) if tuned else (req.source, req.revision)
        if revision and len(revision) != 40 and not Path(str(source)).is_dir():
            log(f"warning: {self.card.name}: revision '{revision}' is a tag, not a commit; remote code "
                "from a tag can change under you")
        common = {"token": req.token, "trust_remote_code": True}
        # The tokenizer never changes in a fine-tune: always the base revision's.
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(req.source, revision=req.revision, **common)
        # A checkpoint saved after loading the base by hub id names its code `vikhyatk/moondream2--...`
        # (the study's does): without code_revision transformers takes that code from the base's main,
        # i.e. the 2025 code. Always the base revision's code, whatever the weights' source.
        model = transformers.AutoModelForCausalLM.from_pretrained(source, revision=revision, **common,
                                                                  code_revision=req.revision,
                                                                  **dtype_kwarg(req.dtype))
        missing = [name for name in ("vision_encoder", "text_model", "encode_image") if not hasattr(model, name)]
        if missing or not hasattr(model.vision_encoder, "preprocess"):
            raise HarnessError(
                f"{self.card.name}: {source}@{revision} is not the 2024 Moondream API (missing "
                f"{missing or ['vision_encoder.preprocess']}); 2025 revisions (HfMoondream) use the "
                "moondream2025 card"
            )
        self.model = model.to(req.device).eval()
        self._image_tokens: int | None = None

    # --- prompt -------------------------------------------------------------------------------
    def question_ids(self, example, prompt_suffix: str) -> list[int]:
        """Tokens of the prompt text after `<image>`, tokenized alone as `Moondream.input_embeds` does."""
        before, after = PROMPT.format(question=example.query + prompt_suffix).split("<image>")
        assert not before  # the official prompt starts with the image
        return self.tokenizer(after, add_special_tokens=False)["input_ids"]

    def answer_ids(self, answer: str) -> list[int]:
        return self.tokenizer(f" {answer}{self.tokenizer.eos_token}", add_special_tokens=False)["input_ids"]

    def image_token_count(self, pixels) -> int:
        """Image embeddings per image (729 on the release); measured once with a real image."""
        if self._image_tokens is None:
            import torch

            with torch.no_grad():
                self._image_tokens = int(self.model.vision_encoder(pixels[:1]).shape[1])
        return self._image_tokens

    def _embed_prompts(self, image_embeds, question_ids: list[list[int]]):
        """[BOS, image, question] per row, left-padded with BOS embeddings (mask 0) like `batch_answer`."""
        import torch

        embed = self.model.text_model.get_input_embeddings()
        device = embed.weight.device
        bos = embed(torch.tensor([self.tokenizer.bos_token_id], device=device))
        rows = [torch.cat([bos, image.to(device, bos.dtype), embed(torch.tensor(ids, device=device))])
                for image, ids in zip(image_embeds, question_ids)]
        width = max(row.shape[0] for row in rows)
        inputs = torch.stack([torch.cat([bos.repeat(width - row.shape[0], 1), row]) for row in rows])
        mask = torch.zeros(len(rows), width, dtype=torch.long, device=device)
        for i, row in enumerate(rows):
            mask[i, width - row.shape[0]:] = 1
        return inputs, mask

    # --- inference ----------------------------------------------------------------------------
    def prepare(self, examples: list, prompt_suffix: str) -> Prepared:
        pixels = [self.model.vision_encoder.preprocess(ex.image) for ex in examples]
        questions = [self.question_ids(ex, prompt_suffix) for ex in examples]
        n_image = self.image_token_count(pixels)
        return Prepared(
            inputs={"pixels": pixels, "question_ids": questions},
            prompt_tokens=[1 + n_image + len(q) for q in questions],
            image_tokens=[n_image] * len(examples),
        )

    def generate(self, prepared: Prepared, decoding: Decoding, on_step: OnStep | None = None) -> Generation:
        import torch
        from transformers import GenerationConfig

        tok = self.tokenizer
        config = GenerationConfig(**decoding.to_dict(), eos_token_id=tok.eos_token_id,
                                  bos_token_id=tok.bos_token_id, pad_token_id=tok.bos_token_id)
        steps = StepCallback(on_step)
        with torch.inference_mode():
            image_embeds = self.model.encode_image(prepared.inputs["pixels"])
            inputs_embeds, attention_mask = self._embed_prompts(image_embeds, prepared.inputs["question_ids"])
            out = self.model.text_model.generate(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                                 generation_config=config, stopping_criteria=steps.criteria())
        # With inputs_embeds and no input_ids, generate returns the new tokens only.
        return Generation(tokens=out, step_times=tuple(steps.times))

    def stop_token_ids(self) -> list[int]:
        return [self.tokenizer.eos_token_id]

    def clean(self, text: str) -> str:
        return text.strip()  # what `answer_question` / `batch_answer` return

    # --- training -----------------------------------------------------------------------------
    def training_batch(self, examples: list, prompt_suffix: str, max_length: int) -> dict:
        """Token ids without the image, plus labels and mask over the full [BOS, image, text] sequence.

        `training_loss` inserts the image embeddings after BOS, as the official `compute_loss` does.
        """
        import torch

        from harness.train.masking import IGNORE_INDEX

        pixels = [self.model.vision_encoder.preprocess(ex.image) for ex in examples]
        n_image = self.image_token_count(pixels)
        bos, pad = self.tokenizer.bos_token_id, self.tokenizer.eos_token_id
        rows, labels = [], []
        for ex in examples:
            question, answer = self.question_ids(ex, prompt_suffix), self.answer_ids(ex.answer)
            rows.append([bos] + question + answer)
            labels.append([IGNORE_INDEX] * (1 + n_image + len(question)) + answer)
        width = max(len(r) for r in rows)
        if n_image + width > max_length:
            raise HarnessError(f"example {examples[0].id}: {n_image + width} positions exceed max_length "
                               f"{max_length}; raise max_length (truncation would cut the answer or image)")
        input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
        label_t = torch.tensor([lab + [IGNORE_INDEX] * (n_image + width - len(lab)) for lab in labels])
        mask = torch.tensor([[1] * (n_image + len(r)) + [0] * (width - len(r)) for r in rows])
        return {"pixels": pixels, "input_ids": input_ids, "attention_mask": mask, "labels": label_t}

    def training_loss(self, batch: dict):
        import torch
        from peft import PeftModel

        if isinstance(self.model, PeftModel):
            raise HarnessError(f"{self.card.name}: only method 'full' is supported (the official recipe "
                               "trains the whole text model)")
        with torch.no_grad():
            image_embeds = self.model.vision_encoder(batch["pixels"])
        tokens = self.model.text_model.get_input_embeddings()(batch["input_ids"])
        inputs_embeds = torch.cat([tokens[:, :1], image_embeds.to(tokens.dtype), tokens[:, 1:]], dim=1)
        out = self.model.text_model(inputs_embeds=inputs_embeds, attention_mask=batch["attention_mask"],
                                    labels=batch["labels"])
        return out.loss

    def trainable_module(self):
        return self.model.text_model

    def enable_gradient_checkpointing(self) -> None:
        # The official notebook checkpoints the text model only; the frozen vision encoder runs under no_grad.
        self.model.text_model.gradient_checkpointing_enable()

    def save_finetuned(self, out_dir) -> None:
        """A complete model folder that loads through the same remote-code path as the base."""
        out_dir = Path(out_dir)
        self.model.save_pretrained(out_dir)
        self.tokenizer.save_pretrained(out_dir)
        strip_auto_map_repo(out_dir / "config.json")
        # transformers < 4.56 does not copy the remote code on save; config.json's auto_map needs it.
        import inspect

        code_dir = Path(inspect.getfile(type(self.model))).parent
        for path in code_dir.glob("*.py"):
            if path.name != "__init__.py" and not (out_dir / path.name).exists():
                shutil.copyfile(path, out_dir / path.name)

    def environment(self) -> dict:
        env = super().environment()
        env["remote_code_class"] = f"{type(self.model).__module__}.{type(self.model).__name__}"
        env["generation_interface"] = generation_interface(self.model.text_model)
        env["image_tokens"] = self._image_tokens
        return env
