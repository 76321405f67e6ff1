"""GPU benchmark: BLIP-2 nucleus sampling for RS3, batched (ours) vs a naive per-image generate loop.

    python bench/gpu/caption.py [--images 64] [--batch-size 32] [--naive-images 8] [--out FILE]
    python bench/gpu/caption.py --tiny --device cpu --images 4 --naive-images 2   # CPU smoke run

Builds a randomly initialised ``Blip2ForConditionalGeneration`` of blip2-opt-2.7b's size (ViT-g/14
vision, 32-query Q-Former, OPT-2.7B decoder; ~3.8 B parameters) in bf16 on the GPU, with a synthetic
word-level tokenizer (no download), and random 224 px images. Both variants sample 20 captions per
image with the RS3 decoding parameters (top-p 0.95, top-k 50, max length 50):

- ``naive``: for each image, transform it and call ``generate(..., num_return_sequences=20)`` on it
  alone (the Hugging Face docs' loop), on the first ``--naive-images`` images;
- ``ours``: ``rs5m.ml.blip2.Blip2Sampler.sample`` on batches of ``--batch-size`` images (one
  ``generate`` for images x 20 rows, SDPA attention, bf16), on all ``--images`` images.

A random model almost never emits EOS, so both variants decode the full 49 tokens: equal work per
image. Prints images/s of each and ``ours / naive`` (target >= 5x) and writes them as JSON to ``--out``.
Without CUDA (and without ``--tiny``) it prints "not measured" and exits 0.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from PIL import Image

from rs5m.config.rs3 import CaptionerConfig
from rs5m.ml.blip2 import Blip2Sampler, tiny_blip2


def opt27b_size_blip2(device: str):
    """Random BLIP-2 with blip2-opt-2.7b's shapes, bf16, on ``device``; and a synthetic tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import Blip2Config, Blip2ForConditionalGeneration, PreTrainedTokenizerFast

    vocab = {"<pad>": 1, "</s>": 2, "<unk>": 3} | {f"w{i}": i for i in range(4, 50272)} | {"<s0>": 0}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="</s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    cfg = Blip2Config(
        vision_config=dict(
            hidden_size=1408, intermediate_size=6144, num_hidden_layers=39, num_attention_heads=16,
            image_size=224, patch_size=14,
        ),
        qformer_config=dict(
            hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
            encoder_hidden_size=1408, cross_attention_frequency=2, vocab_size=30523,
        ),
        text_config=dict(
            model_type="opt", hidden_size=2560, ffn_dim=10240, num_hidden_layers=32, num_attention_heads=32,
            vocab_size=50272, word_embed_proj_dim=2560, max_position_embeddings=2048,
            bos_token_id=2, eos_token_id=2, pad_token_id=1,
        ),
        num_query_tokens=32,
        image_token_index=50265,
    )  # fmt: skip
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):
        model = Blip2ForConditionalGeneration(cfg).to(torch.bfloat16).eval()
    return model, tokenizer


def _images(n: int, size: int = 224) -> list[Image.Image]:
    gen = torch.Generator().manual_seed(0)
    return [
        Image.fromarray((torch.rand(size, size, 3, generator=gen) * 255).to(torch.uint8).numpy())
        for _ in range(n)
    ]


def _timed(fn, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def run(args: argparse.Namespace) -> dict:
    """Build the model, warm up, time naive then ours; return the measurements."""
    if args.tiny:
        model, tokenizer = tiny_blip2()
        dtype = torch.float32
        model = model.to(args.device)
    else:
        model, tokenizer = opt27b_size_blip2(args.device)
        dtype = torch.bfloat16
    cfg = CaptionerConfig(model="random", dtype="bf16", n_samples=20, batch_size=args.batch_size)
    sampler = Blip2Sampler(model, tokenizer, cfg, args.device, dtype)
    images = _images(args.images)
    naive_images = images[: args.naive_images]
    sampler.sample(images[:2], 0)  # warm-up: kernels, allocator
    naive_s = _timed(lambda: [sampler.sample([img], i) for i, img in enumerate(naive_images)], args.device)
    b = args.batch_size
    ours_s = _timed(
        lambda: [sampler.sample(images[i : i + b], i) for i in range(0, len(images), b)], args.device
    )
    naive_rate, ours_rate = len(naive_images) / naive_s, len(images) / ours_s
    return {
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor(),
        "model": "tiny-random-blip2" if args.tiny else "random blip2-opt-2.7b size, bf16",
        "parameters": sum(p.numel() for p in model.parameters()),
        "samples_per_image": 20,
        "batch_size": b,
        "images": len(images),
        "naive_images": len(naive_images),
        "naive_img_s": round(naive_rate, 3),
        "ours_img_s": round(ours_rate, 3),
        "ratio": round(ours_rate / naive_rate, 2),
        "max_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2)
        if args.device.startswith("cuda")
        else None,
        "torch": torch.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--naive-images", type=int, default=8)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny random model (smoke run, any device)")
    parser.add_argument("--out", type=Path, default=None, help="write the result JSON here")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("RS3 captioning (GPU): not measured (no CUDA device)")
        return
    result = run(args)
    print(json.dumps(result, indent=2))
    print(f"ours / naive = {result['ratio']}x (target >= 5x)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
