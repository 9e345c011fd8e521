"""`MoondreamModel` of the 2025 releases, twin-sized: query with explicit sampling settings, prefix-LM mask."""

from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from torch import nn

DEFAULT_MAX_TOKENS = 768
DEFAULT_TEMPERATURE = 0.5  # the release samples unless settings say otherwise
DEFAULT_TOP_P = 0.3


@dataclass(frozen=True)
class EncodedImage:
    pos: int
    caches: list  # the release keeps per-layer KV caches; the twin keeps the [BOS, image] embeddings


class Block(nn.Module):
    def __init__(self, dim, n_heads, ff_dim):
        super().__init__()
        self.n_heads = n_heads
        self.ln = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.fc1 = nn.Linear(dim, ff_dim)
        self.fc2 = nn.Linear(ff_dim, dim)

    def forward(self, x, mask):
        b, n, d = x.shape
        h = self.ln(x)
        q, k, v = self.qkv(h).reshape(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        attn = self.proj(attn.transpose(1, 2).reshape(b, n, d))
        return x + attn + self.fc2(F.gelu(self.fc1(h), approximate="tanh"))  # parallel block, as in Phi


class MoondreamModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        t, v = config.text, config.vision
        self.tokenizer = Tokenizer.from_str(config.tokenizer_json)
        patches = (v.crop_size // v.enc_patch_size) ** 2
        self.vision = nn.ModuleDict({
            "patch_emb": nn.Linear(3 * v.enc_patch_size**2, v.enc_dim),
            "block": Block(v.enc_dim, 2, 2 * v.enc_dim),
            "proj": nn.Linear(v.enc_dim, t.dim),
        })
        self.vision_pos = nn.Parameter(torch.zeros(1, patches, v.enc_dim))
        self.text = nn.ModuleDict({
            "wte": nn.Embedding(t.vocab_size, t.dim),
            "blocks": nn.ModuleList(Block(t.dim, t.n_heads, t.ff_dim) for _ in range(t.n_layers)),
            "post_ln": nn.LayerNorm(t.dim),
            "lm_head": nn.Linear(t.dim, t.vocab_size),
        })
        self._seq = None  # embeddings of everything generated so far (the release: KV caches)

    def init_module(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(0.0, 0.02)
            if getattr(module, "bias", None) is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()

    @property
    def device(self):
        return self.text["wte"].weight.device

    def _attn_mask(self, n):
        """Causal, except that the first `prefix_attn` positions see each other (prefix-LM)."""
        mask = torch.tril(torch.ones(n, n, dtype=torch.bool, device=self.device))
        prefix = min(n, self.config.text.prefix_attn)
        mask[:prefix, :prefix] = True
        return mask

    def _text_forward(self, seq):
        x = seq
        mask = self._attn_mask(x.shape[1])
        for block in self.text["blocks"]:
            x = block(x, mask)
        hidden = self.text["post_ln"](x[:, -1])
        return self.text["lm_head"](hidden).float(), hidden

    def _run_vision_encoder(self, image):
        v = self.config.vision
        image = image.convert("RGB").resize((v.crop_size, v.crop_size), PIL.Image.BICUBIC)
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)
        p = v.enc_patch_size
        x = x.reshape(3, v.crop_size // p, p, v.crop_size // p, p).permute(1, 3, 0, 2, 4).reshape(1, -1, 3 * p * p)
        dtype = self.text["wte"].weight.dtype
        x = self.vision["patch_emb"](x.to(self.device, dtype)) + self.vision_pos
        x = self.vision["block"](x, None)
        return self.vision["proj"](x)

    def encode_image(self, image, settings=None):
        if isinstance(image, EncodedImage):
            return image
        # As the release (2025-06 code): any settings dict must carry "variant" (None: the base weights).
        variant = settings["variant"] if settings is not None else None
        if variant is not None:
            raise NotImplementedError("the twin has no LoRA variants")
        with torch.inference_mode():
            bos = self.text["wte"](torch.tensor([[self.config.tokenizer.bos_id]], device=self.device))
            seq = torch.cat([bos, self._run_vision_encoder(image)], dim=1)
        return EncodedImage(pos=seq.shape[1], caches=[seq])

    def load_encoded_image(self, encoded_image):
        self._seq = encoded_image.caches[0]

    def _sample(self, logits, temperature, top_p):
        if temperature == 0:
            return torch.argmax(logits, dim=-1, keepdim=True)
        probs = torch.softmax(logits / temperature, dim=-1)
        sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
        keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < top_p
        sorted_probs = sorted_probs * keep
        choice = torch.multinomial(sorted_probs / sorted_probs.sum(-1, keepdim=True), 1)
        return order.gather(-1, choice)

    def _prefill_prompt(self, prompt_tokens, pos, temperature, top_p, spatial_refs=None, attn_mask=None, lora=None):
        with torch.inference_mode():
            self._seq = torch.cat([self._seq, self.text["wte"](prompt_tokens)], dim=1)
            logits, hidden = self._text_forward(self._seq)
            next_token = self._sample(logits, temperature, top_p)
        return logits, hidden, next_token, pos + prompt_tokens.shape[1]

    def _decode_one_tok(self, x, attn_mask, pos_ids, lora=None):
        self._seq = torch.cat([self._seq, x], dim=1)
        return self._text_forward(self._seq)

    def _generate_answer(self, prompt_tokens, pos, settings=None):
        settings = settings or {}
        if settings.get("variant") is not None:
            raise NotImplementedError("the twin has no LoRA variants")
        max_tokens = settings.get("max_tokens", DEFAULT_MAX_TOKENS)
        temperature = settings.get("temperature", DEFAULT_TEMPERATURE)
        top_p = settings.get("top_p", DEFAULT_TOP_P)
        eos_id = self.config.tokenizer.eos_id
        _, _, next_token, pos = self._prefill_prompt(prompt_tokens, pos, temperature, top_p)
        generated = []
        while next_token.item() != eos_id and len(generated) < max_tokens:
            generated.append(next_token.item())
            with torch.inference_mode():
                logits, _ = self._decode_one_tok(self.text["wte"](next_token), None, None)
                logits[:, self.config.tokenizer.answer_id] = float("-inf")
                next_token = self._sample(logits, temperature, top_p)
            pos += 1
        yield self.tokenizer.decode(generated)  # the release streams word by word

    def query(self, image=None, question=None, reasoning=False, spatial_refs=None, stream=False, settings=None):
        if question is None:
            raise ValueError("question must be provided.")
        if image is None or reasoning or spatial_refs:
            raise NotImplementedError("the twin answers questions about an image only")
        image = self.encode_image(image, settings)
        self.load_encoded_image(image)
        template = self.config.tokenizer.templates["query"]
        tokens = template["prefix"] + self.tokenizer.encode(question).ids + template["suffix"]
        tokens += template["suffix"]  # the release appends the suffix again when not reasoning
        prompt_tokens = torch.tensor([tokens], device=self.device)
        chunks = self._generate_answer(prompt_tokens, image.pos, settings)
        return {"answer": chunks if stream else "".join(chunks)}
