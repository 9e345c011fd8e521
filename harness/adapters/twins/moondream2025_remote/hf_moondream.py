"""`HfConfig` / `HfMoondream`: the transformers wrapper of the 2025 releases, twin-sized.

Difference: the release's `HfConfig.__init__` resets `self.config = {}` (the real sizes are code
defaults); the twin keeps the sizes stored in config.json.
"""

from transformers import PretrainedConfig, PreTrainedModel

from .config import MoondreamConfig
from .moondream import MoondreamModel


class HfConfig(PretrainedConfig):
    model_type = "moondream1"

    def __init__(self, config=None, **kwargs):
        self.config = dict(config or {})
        super().__init__(**kwargs)


class HfMoondream(PreTrainedModel):
    config_class = HfConfig

    def __init__(self, config):
        super().__init__(config)
        self.model = MoondreamModel(MoondreamConfig.from_dict(config.config))
        self.post_init()

    def _init_weights(self, module):
        self.model.init_module(module)

    @property
    def encode_image(self):
        return self.model.encode_image

    @property
    def query(self):
        return self.model.query

    def answer_question(self, image_embeds, question, tokenizer=None, chat_history="", result_queue=None,
                        max_new_tokens=256, **kwargs):
        answer = self.query(image_embeds, question)["answer"].strip()
        if result_queue is not None:
            result_queue.put(answer)
        return answer

    def batch_answer(self, images, prompts, tokenizer=None, **kwargs):
        return [self.query(image, prompt)["answer"].strip() for image, prompt in zip(images, prompts)]
