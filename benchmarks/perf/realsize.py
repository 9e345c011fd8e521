"""Real architectures at real size, random weights: prefill, decode per token and peak memory.

Builds Qwen2-VL-2B, SmolVLM-Base (Idefics3) and a Moondream2-like model (SigLIP + MLP + Phi) from the
configs in benchmarks/perf/configs/ (no download, no hub), feeds each one chart-sized image per
sample at batch 1 and 8, and generates a fixed number of tokens (min = max new tokens, greedy), so the
figures measure the architecture, not what random weights happen to say. Timing and memory use the
harness's own trackers: CUDA events per decode step, torch allocator peaks after a reset, NVML sampled
every 10 ms (RSS on CPU).

Run on any GPU box:  python benchmarks/perf/realsize.py
On CPU / in CI:      python benchmarks/perf/realsize.py --tiny   (same code path, toy widths)
Options: --models qwen2vl,smolvlm --batch-sizes 1,8 --new-tokens 32 --repeats 3
         --dtype bfloat16 --attn sdpa --json figures.json
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the harness, for its trackers

# Architectures this script builds at real size, by model-card `family` (the models come from the registry).
CONFIGS = {"qwen2vl": "qwen2vl_2b.json", "idefics3": "smolvlm_base.json", "moondream2": "moondream2.json"}
TEXT_IDS = (1000, 30000)  # ordinary token ids for the random question text (no special tokens)


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_spec(family: str, tiny: bool) -> dict:
    spec = json.loads((HERE / "configs" / CONFIGS[family]).read_text())
    if tiny:
        spec = {**spec, **{k: deep_merge(spec.get(k, {}), v) for k, v in spec.get("tiny", {}).items()}}
    return spec


def chart(width: int, height: int):
    """A bar-chart-like RGB image of ChartQA size (content is irrelevant to speed, size is not)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for i in range(8):
        x = 60 + i * (width - 120) // 8
        draw.rectangle([x, height - 60 - (i * 37 % 400), x + 40, height - 60], fill=(40 * i % 255, 90, 160))
    draw.line([50, 20, 50, height - 50], fill="black", width=2)
    return image


def _kw_dtype(dtype) -> dict:
    import transformers
    from packaging.version import Version

    return {"dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype": dtype}


def _text(n: int, gen) -> list[int]:
    import torch

    return torch.randint(*TEXT_IDS, (n,), generator=gen).tolist()


# --- builders: (model, make_inputs(batch) -> generate kwargs, facts) -----------------------------

def build_qwen2vl(spec: dict, device: str, dtype, attn: str):
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor

    config = Qwen2VLConfig.from_dict(spec["config"])
    with torch.device(device):
        model = Qwen2VLForConditionalGeneration._from_config(config, attn_implementation=attn, **_kw_dtype(dtype))
    inp = spec["inputs"]
    processor = Qwen2VLImageProcessor(min_pixels=inp["min_pixels"], max_pixels=inp["max_pixels"])
    merge = config.vision_config.spatial_merge_size
    gen = torch.Generator().manual_seed(0)

    def make(batch: int) -> dict:
        pixels = processor(images=[chart(inp["image_width"], inp["image_height"])] * batch, return_tensors="pt")
        n_image = int(pixels["image_grid_thw"][0].prod()) // merge**2
        row = (_text(8, gen) + [config.vision_start_token_id] + [config.image_token_id] * n_image
               + [config.vision_end_token_id] + _text(inp["question_tokens"], gen))
        ids = torch.tensor([row] * batch, device=device)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                "pixel_values": pixels["pixel_values"].to(device, dtype),
                "image_grid_thw": pixels["image_grid_thw"].to(device), "_image_tokens": n_image,
                "_prompt_tokens": len(row)}

    return model, make, {"eos": spec["config"]["eos_token_id"], "pad": spec["config"]["bos_token_id"]}


def build_smolvlm(spec: dict, device: str, dtype, attn: str):
    import torch
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor

    config = Idefics3Config.from_dict(spec["config"])
    with torch.device(device):
        model = Idefics3ForConditionalGeneration._from_config(config, attn_implementation=attn, **_kw_dtype(dtype))
    inp, vision = spec["inputs"], config.vision_config
    processor = Idefics3ImageProcessor(size={"longest_edge": inp["longest_edge"]},
                                       max_image_size={"longest_edge": inp["tile"]}, do_image_splitting=True)
    per_tile = int((vision.image_size // vision.patch_size) ** 2 / config.scale_factor**2)
    gen = torch.Generator().manual_seed(0)

    def make(batch: int) -> dict:
        pixels = processor(images=[[chart(inp["image_width"], inp["image_height"])]] * batch, return_tensors="pt")
        n_image = int(pixels["pixel_values"].shape[1]) * per_tile
        row = _text(4, gen) + [config.image_token_id] * n_image + _text(inp["question_tokens"], gen)
        ids = torch.tensor([row] * batch, device=device)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                "pixel_values": pixels["pixel_values"].to(device, dtype),
                "pixel_attention_mask": pixels["pixel_attention_mask"].to(device), "_image_tokens": n_image,
                "_prompt_tokens": len(row)}

    return model, make, {"eos": 2, "pad": 2}


MOONDREAM_SIZES = [(378, 378), (378, 756), (756, 378), (756, 756)]  # (height, width) the 2024 encoder accepts


def moondream_size(width: int, height: int) -> tuple[int, int]:
    """(height, width) the 2024 releases resize an image to before encoding (vision_encoder.py `preprocess`).

    Under 512 px on the longest side: one 378 crop. Otherwise the accepted size whose ratio is closest
    to the image's, ties broken by the smaller size change. (The release compares size[1] / size[0],
    i.e. width / height of an (h, w) size, with width / height.) An 850x600 chart ties 1:1 with
    378x378 and is closer in size to 756x756: 4 crops.
    """
    if max(width, height) < 512:
        return MOONDREAM_SIZES[0]
    ratio = width / height
    return min(MOONDREAM_SIZES, key=lambda hw: (abs(hw[1] / hw[0] - ratio), abs(hw[0] - width) + abs(hw[1] - height)))


def build_moondream(spec: dict, device: str, dtype, attn: str):
    """SigLIP vision tower -> [global | crops] features -> MLP -> Phi, prompt [BOS, image, question].

    As the 2024 releases encode an image: resized to `moondream_size`, then one pass of the tower per
    378 crop plus one for the whole image scaled to 378 (a 756x756 chart: 5 passes); the crops' 27x27
    feature maps are tiled and scaled back to 27x27, so the text model still sees 729 image positions.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn
    from transformers import PhiConfig, PhiForCausalLM, SiglipVisionConfig, SiglipVisionModel

    cfg = spec["config"]
    text_config, vision_config = PhiConfig(**cfg["text_config"]), SiglipVisionConfig(**cfg["vision_config"])
    crop, grid = vision_config.image_size, vision_config.image_size // vision_config.patch_size

    class MoondreamLike(nn.Module):
        def __init__(self):
            super().__init__()
            self.vision = SiglipVisionModel._from_config(vision_config, attn_implementation=attn, **_kw_dtype(dtype))
            self.projection = nn.Sequential(nn.Linear(cfg["projection"]["in_features"],
                                                      cfg["projection"]["hidden_features"]),
                                            nn.GELU(approximate="tanh"),
                                            nn.Linear(cfg["projection"]["hidden_features"], text_config.hidden_size))
            self.text = PhiForCausalLM._from_config(text_config, attn_implementation=attn, **_kw_dtype(dtype))
            self.vision_passes = 0  # images through the tower per sample, last encode

        def encode(self, pixels):
            batch, _, height, width = pixels.shape
            rows, cols = height // crop, width // crop
            whole = pixels if rows == cols == 1 else F.interpolate(pixels, size=(crop, crop), mode="bilinear")
            crops = [] if rows == cols == 1 else [pixels[:, :, r * crop:(r + 1) * crop, c * crop:(c + 1) * crop]
                                                  for r in range(rows) for c in range(cols)]
            # One tower call over every image, as the release batches global images and crops together.
            features = self.vision(pixel_values=torch.cat([whole, *crops])).last_hidden_state
            self.vision_passes = features.shape[0] // batch
            dim = features.shape[-1]
            whole_features = features[:batch]
            if not crops:  # the release's crop features equal the global ones then
                return self.projection(torch.cat([whole_features, whole_features], dim=-1))
            maps = features[batch:].view(rows, cols, batch, grid, grid, dim).permute(2, 5, 0, 3, 1, 4)
            tiled = maps.reshape(batch, dim, rows * grid, cols * grid)
            crop_features = F.interpolate(tiled, size=(grid, grid), mode="bilinear").flatten(2).transpose(1, 2)
            return self.projection(torch.cat([whole_features, crop_features], dim=-1))

        def generate(self, pixel_values, input_ids, **kwargs):
            embed = self.text.get_input_embeddings()
            image = self.encode(pixel_values)
            tokens = embed(input_ids)
            inputs = torch.cat([tokens[:, :1], image.to(tokens.dtype), tokens[:, 1:]], dim=1)
            mask = torch.ones(inputs.shape[:2], dtype=torch.long, device=inputs.device)
            return self.text.generate(inputs_embeds=inputs, attention_mask=mask, **kwargs)

    with torch.device(device):
        model = MoondreamLike().to(dtype)
    inp = spec["inputs"]
    height, width = moondream_size(inp["image_width"], inp["image_height"])
    image = chart(inp["image_width"], inp["image_height"]).resize((width, height), resample=3)  # bicubic
    # The release normalises with mean = std = 0.5.
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1.0
    gen = torch.Generator().manual_seed(0)

    def make(batch: int) -> dict:
        row = [text_config.bos_token_id] + _text(inp["question_tokens"], gen)
        return {"input_ids": torch.tensor([row] * batch, device=device),
                "pixel_values": pixels.expand(batch, -1, -1, -1).to(device, dtype),
                "_image_tokens": grid**2, "_prompt_tokens": len(row) + grid**2,
                "_vision_image": f"{width}x{height}"}

    return model, make, {"eos": text_config.eos_token_id, "pad": text_config.eos_token_id}


BUILDERS = {"qwen2vl": build_qwen2vl, "idefics3": build_smolvlm, "moondream2": build_moondream}


def registry_models(names: str | None) -> dict[str, str]:
    """{model: family} for the cards asked for (default: every card whose family this script can build)."""
    import os

    os.environ.setdefault("HARNESS_CONFIG_DIR", str(HERE.parents[1]))
    from harness.registry import list_models, load_model

    cards = [load_model(n) for n in names.split(",")] if names else list_models()
    unbuildable = [c.name for c in cards if c.family not in BUILDERS]
    if names and unbuildable:
        raise SystemExit(f"realsize: --models: no real-size builder for {', '.join(unbuildable)} "
                           f"(families built here: {', '.join(BUILDERS)})")
    return {c.name: c.family for c in cards if c.family in BUILDERS}


# --- measurement ---------------------------------------------------------------------------------

def measure(model, make, ids: dict, batch: int, new_tokens: int, repeats: int, device: str) -> dict:
    import torch

    from harness.adapters.protocol import StepCallback
    from harness.trackers import MemoryTracker, StepTimer, Stopwatch

    inputs = make(batch)
    image_tokens, prompt_tokens = inputs.pop("_image_tokens"), inputs.pop("_prompt_tokens")
    vision_image = inputs.pop("_vision_image", None)
    settings = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "do_sample": False, "num_beams": 1,
                "eos_token_id": ids["eos"], "pad_token_id": ids["pad"]}

    def once(timer=None):
        with torch.inference_mode():
            return model.generate(**inputs, **settings,
                                  stopping_criteria=StepCallback(timer.stamp if timer else None).criteria())

    once()  # warm-up: kernel selection, caches
    vision = {} if vision_image is None else {"vision_image": vision_image, "vision_passes": model.vision_passes}
    prefill, per_token, total = [], [], []
    with MemoryTracker(device) as memory:
        for _ in range(repeats):
            timer = StepTimer(device)
            with Stopwatch(device) as watch:
                timer.begin()
                once(timer)
            timer.finish()
            if timer.steps != new_tokens:
                raise SystemExit(f"expected {new_tokens} decoding steps, the timer saw {timer.steps}")
            prefill.append(timer.prefill_ms)
            per_token.append(timer.decode_ms_per_token)
            total.append(watch.ms)
    gen_ms = statistics.median(total)
    mem = memory.result
    return {
        "batch_size": batch, "image_tokens": image_tokens, "prompt_tokens": prompt_tokens,
        "prefill_ms": statistics.median(prefill), "decode_ms_per_token": statistics.median(per_token),
        "generate_ms": gen_ms, "generated_tokens_per_s": batch * new_tokens / (gen_ms / 1000.0),
        "samples_per_s": batch / (gen_ms / 1000.0), "prefill_ms_all": prefill, "decode_ms_per_token_all": per_token,
        "memory": mem, "clock": timer.clock, **vision,
    }


def fmt_mem(mem: dict) -> str:
    keys = ("torch_max_allocated_mb", "torch_max_reserved_mb", "nvml_peak_used_mb") if "torch_max_allocated_mb" in mem \
        else ("rss_peak_mb",)
    return "  ".join(f"{k.replace('_mb', '')} {mem[k]:.0f} MB" for k in keys if mem.get(k) is not None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="toy widths, same code path (CPU / CI)")
    parser.add_argument("--models", help="comma-separated card names (default: every card of a family built here)")
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--new-tokens", type=int, default=32, help="generated per sample (min = max)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", help="default: cuda if available, else cpu")
    parser.add_argument("--dtype", help="default: bfloat16 on CUDA, float32 on CPU")
    parser.add_argument("--attn", default="sdpa", help="attention implementation (sdpa, eager, flash_attention_2)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    import torch
    import transformers

    from harness.manifest import environment_manifest

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.startswith("cuda") else "float32"))
    if args.threads:
        torch.set_num_threads(args.threads)
    env = environment_manifest(device)
    print(f"real-architecture benchmark{' (--tiny)' if args.tiny else ''}: {env['hardware']}, {dtype}, "
          f"attention {args.attn}, {args.new_tokens} new tokens, median of {args.repeats}; torch {torch.__version__}, "
          f"transformers {transformers.__version__}")
    figures = {"tiny": args.tiny, "device": device, "hardware": env["hardware"], "dtype": str(dtype),
               "attn": args.attn, "new_tokens": args.new_tokens, "repeats": args.repeats,
               "torch": torch.__version__, "transformers": transformers.__version__, "models": {}}
    for name, family in registry_models(args.models).items():
        spec = load_spec(family, args.tiny)
        torch.manual_seed(0)
        model, make, ids = BUILDERS[family](spec, device, dtype, args.attn)
        model.eval()
        params = sum(p.numel() for p in model.parameters())
        weights_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
        print(f"\n{name}: {params / 1e9:.3f}B parameters built (published {spec.get('published_parameters', '?')}"
              f"{', tiny widths' if args.tiny else ''}), weights {weights_mb:.0f} MB")
        rows = []
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            row = measure(model, make, ids, batch, args.new_tokens, args.repeats, device)
            rows.append(row)
            passes = f" ({row['vision_image']}, {row['vision_passes']} vision passes)" if "vision_passes" in row else ""
            print(f"  batch {batch:>2}: {row['image_tokens']} image{passes} / {row['prompt_tokens']} prompt "
                  f"tokens per sample, prefill {row['prefill_ms']:8.1f} ms, "
                  f"decode {row['decode_ms_per_token']:7.2f} ms/token, "
                  f"{row['generated_tokens_per_s']:8.1f} tokens/s, "
                  f"{row['samples_per_s']:6.2f} samples/s | {fmt_mem(row['memory'])}")
        figures["models"][name] = {"parameters": params, "weights_mb": weights_mb, "runs": rows}
        del model, make
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
