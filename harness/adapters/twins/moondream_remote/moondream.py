"""Moondream2 twin model: the 2024 release's `Moondream` API over a real (tiny) `PhiForCausalLM`.

Mirrored from `vikhyatk/moondream2` revision 2024-07-23 (`moondream.py`):
- prompt embeddings are [BOS embedding, image embeddings, embeddings of the text after `<image>`];
- `generate` calls `text_model.generate(inputs_embeds=...)` with eos = the tokenizer's eos and
  pad = bos, so the output holds the new tokens only;
- `batch_answer` left-pads every prompt with copies of the BOS embedding and a zero attention mask.
The text model is transformers' PhiForCausalLM with the release's generation interface where the
release can run (transformers < 4.50; see `modeling_phi.py`).
"""

import torch
from torch import nn
from transformers import PreTrainedModel

from .configuration_moondream import MoondreamConfig
from .modeling_phi import PhiForCausalLM
from .vision_encoder import VisionEncoder


class Moondream(PreTrainedModel):
    config_class = MoondreamConfig
    base_model_prefix = "moondream"
    supports_gradient_checkpointing = False  # the release enables it on `text_model` only

    def __init__(self, config):
        super().__init__(config)
        self.vision_encoder = VisionEncoder(config.vision_config, config.text_config.hidden_size)
        self.text_model = PhiForCausalLM(config.text_config)
        self.post_init()

    def _init_weights(self, module):
        std = self.config.text_config.initializer_range
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()

    @property
    def device(self):
        return self.text_model.device

    def get_input_embeddings(self):
        return self.text_model.get_input_embeddings()

    def encode_image(self, image):
        with torch.no_grad():
            return self.vision_encoder(image)

    def input_embeds(self, prompt, image_embeds, tokenizer):
        def tokenize(text):
            return tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids.to(self.device)

        embed = self.text_model.get_input_embeddings()
        parts = [embed(torch.tensor([[tokenizer.bos_token_id]], device=self.device))]
        if "<image>" not in prompt:
            parts.append(embed(tokenize(prompt)))
        else:
            if prompt.count("<image>") != 1:
                raise ValueError("the prompt must contain one <image>")
            before, after = prompt.split("<image>")
            if before:
                parts.append(embed(tokenize(before)))
            parts.append(image_embeds.to(self.device))
            if after:
                parts.append(embed(tokenize(after)))
        return torch.cat(parts, dim=1)

    def generate(self, image_embeds, prompt, tokenizer, max_new_tokens=128, **kwargs):
        settings = {
            "eos_token_id": tokenizer.eos_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "pad_token_id": tokenizer.bos_token_id,
            "max_new_tokens": max_new_tokens,
            **kwargs,
        }
        with torch.no_grad():
            inputs_embeds = self.input_embeds(prompt, image_embeds, tokenizer)
            attention_mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long, device=self.device)
            output_ids = self.text_model.generate(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                                  **settings)
        return tokenizer.batch_decode(output_ids, skip_special_tokens=True)

    def answer_question(self, image_embeds, question, tokenizer, chat_history="", result_queue=None, **kwargs):
        prompt = f"<image>\n\n{chat_history}Question: {question}\n\nAnswer:"
        # As the release: max_new_tokens is fixed here, so passing it too is a TypeError (duplicate keyword).
        answer = self.generate(image_embeds, prompt, tokenizer=tokenizer, max_new_tokens=512, **kwargs)[0].strip()
        if result_queue:
            result_queue.put(answer)
            return None
        return answer

    def batch_answer(self, images, prompts, tokenizer, **kwargs):
        image_embeds = self.encode_image(images)
        templated = [f"<image>\n\nQuestion: {prompt}\n\nAnswer:" for prompt in prompts]
        prompt_embs = [self.input_embeds(prompt, embeds.unsqueeze(0), tokenizer)[0]
                       for prompt, embeds in zip(templated, image_embeds)]
        bos_emb = prompt_embs[0][0]
        max_len = max(p.shape[0] for p in prompt_embs)
        inputs_embeds = torch.stack([torch.cat([bos_emb.repeat(max_len - p.shape[0], 1), p]) for p in prompt_embs])
        attention_mask = torch.stack([
            torch.cat([torch.zeros(max_len - p.shape[0], dtype=torch.long, device=self.device),
                       torch.ones(p.shape[0], dtype=torch.long, device=self.device)])
            for p in prompt_embs
        ])
        settings = {
            "eos_token_id": tokenizer.eos_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "pad_token_id": tokenizer.bos_token_id,
            "max_new_tokens": 512,
            **kwargs,
        }
        with torch.no_grad():
            output_ids = self.text_model.generate(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                                  **settings)
        return [text.strip() for text in tokenizer.batch_decode(output_ids, skip_special_tokens=True)]
