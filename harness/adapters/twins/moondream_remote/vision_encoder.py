"""Moondream2 twin vision encoder: a toy ViT with the release's module layout and call conventions.

Like the 2024 release: `preprocess(image)` turns a PIL image into a normalised CHW float tensor
(mean 0.5, std 0.5); `forward` takes PIL images, a list of preprocessed tensors or a BCHW tensor, and
returns projected features [batch, tokens, text hidden size]. The release concatenates whole-image
features with pooled crop features before its projection MLP; for images under 512 pixels (all the
twin handles) the crop features are the whole-image features, which is what the twin computes.
"""

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)  # bidirectional, as in the release
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class MLP(nn.Module):
    def __init__(self, in_features, hidden_features, out_features=None):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class VitBlock(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio):
        super().__init__()
        self.attn = Attention(dim, num_heads)
        self.mlp = MLP(dim, dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class LinearPatchEmbedding(nn.Module):
    def __init__(self, patch_size, dim):
        super().__init__()
        self.patch_size = patch_size
        self.linear = nn.Linear(3 * patch_size * patch_size, dim)

    def forward(self, x):
        b, c, h, w = x.shape
        p = self.patch_size
        x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // p) * (w // p), c * p * p)
        return self.linear(x)


class VisionTransformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        dim, tokens = cfg["hidden_size"], (cfg["crop_size"] // cfg["patch_size"]) ** 2
        self.patch_embed = LinearPatchEmbedding(cfg["patch_size"], dim)
        self.pos_embed = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.blocks = nn.Sequential(*[VitBlock(dim, cfg["num_heads"], cfg["mlp_ratio"])
                                      for _ in range(cfg["num_layers"])])
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.norm(self.blocks(self.patch_embed(x) + self.pos_embed))


class EncoderWrapper(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.model = nn.ModuleDict({"visual": VisionTransformer(cfg)})

    def forward(self, x):
        return self.model["visual"](x)


class VisionProjection(nn.Module):
    def __init__(self, cfg, text_dim):
        super().__init__()
        self.mlp = MLP(cfg["hidden_size"] * 2, text_dim * 4, text_dim)

    def forward(self, x):
        return self.mlp(x)


class VisionEncoder(nn.Module):
    def __init__(self, cfg, text_dim):
        super().__init__()
        self.crop_size = cfg["crop_size"]
        self.encoder = EncoderWrapper(cfg)
        self.projection = VisionProjection(cfg, text_dim)

    @property
    def device(self):
        return self.projection.mlp.fc1.weight.device

    @property
    def dtype(self):
        return self.projection.mlp.fc1.weight.dtype

    def preprocess(self, image):
        image = image.convert("RGB").resize((self.crop_size, self.crop_size), PIL.Image.BICUBIC)
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (x - 0.5) / 0.5

    def forward(self, images):
        if isinstance(images, torch.Tensor):
            if images.dim() != 4:
                raise ValueError("tensor input must have dimensions (B, C, H, W)")
            batch = images
        else:
            items = [images] if isinstance(images, PIL.Image.Image) else list(images)
            items = [im if isinstance(im, torch.Tensor) else self.preprocess(im) for im in items]
            batch = torch.stack(items)
        features = self.encoder(batch.to(self.device, dtype=self.dtype))
        return self.projection(torch.cat([features, features], dim=2))
