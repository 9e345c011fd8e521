"""Moondream2 twin config (mirrors the 2024 release's `MoondreamConfig`: a Phi `text_config`).

The vision tower of the real release has fixed sizes in code (SigLIP so400m, 378-pixel crops, 729
tokens); the twin keeps its toy sizes in `vision_config` instead.
"""

from transformers import PhiConfig, PretrainedConfig

DEFAULT_VISION = {"crop_size": 28, "patch_size": 7, "hidden_size": 32, "num_layers": 1, "num_heads": 2,
                  "mlp_ratio": 2}


class MoondreamConfig(PretrainedConfig):
    model_type = "moondream1"
    sub_configs = {"text_config": PhiConfig}

    def __init__(self, text_config=None, vision_config=None, **kwargs):
        if isinstance(text_config, PhiConfig):
            self.text_config = text_config
        else:
            self.text_config = PhiConfig(**(text_config or {}))
        self.vision_config = {**DEFAULT_VISION, **(vision_config or {})}
        super().__init__(**kwargs)
