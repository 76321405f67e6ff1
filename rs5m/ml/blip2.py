"""BLIP-2 loading and batched nucleus sampling (Hugging Face transformers, not LAVIS: see dependencies.md).

Contract:
- ``load_blip2(cfg, device)`` returns a :class:`Blip2Sampler` for a hub id, a local directory, or
  ``config.TINY_BLIP2`` (a ~0.2 M-parameter random model with a word-level tokenizer built in code, for
  tests and the sample build; its captions are word salad). An optional LoRA adapter (peft) is merged
  into the weights after loading, so inference costs the same as without it.
- ``Blip2Sampler.sample(images, seed)`` returns ``n_samples`` decoded captions per image, in image order,
  from one ``generate`` call for the whole batch (images x samples rows). The global torch RNG is seeded
  with ``seed`` first, so a batch is reproducible on the same device and software.
- ``max_length`` counts the BOS token, as RS5M's script did with the transformers of its day; the image
  query tokens (and a prompt, when configured) come on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from rs5m.config.rs3 import TINY_BLIP2, CaptionerConfig

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_TINY_WORDS = (
    "a an the of with and in on near next to aerial view satellite image many some several two buildings "
    "road roads river green trees field fields farmland airport runway planes parking lot cars city houses "
    "lake forest beach sea ship ships harbour bridge stadium playground residential area industrial "
    "school church pond desert mountain meadow square"
).split()
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; anything else unchanged."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def tiny_tokenizer():
    """A word-level fast tokenizer over a small RS vocabulary (ids: pad 0, eos 1, bos 2, unk 3, image 4)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<s>": 2, "<unk>": 3, "<image>": 4}
    for word in _TINY_WORDS:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with single spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
    )


def tiny_blip2(seed: int = 0, image_size: int = 224):
    """A tiny random ``Blip2ForConditionalGeneration`` (OPT decoder) and its tokenizer; CPU-fast."""
    from transformers import Blip2Config, Blip2ForConditionalGeneration

    tokenizer = tiny_tokenizer()
    n = len(tokenizer)
    cfg = Blip2Config(
        vision_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            image_size=image_size, patch_size=32,
        ),
        qformer_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            encoder_hidden_size=32, vocab_size=n + 8,
        ),
        text_config=dict(
            model_type="opt", hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=2,
            vocab_size=n, word_embed_proj_dim=32, max_position_embeddings=256,
            bos_token_id=2, eos_token_id=1, pad_token_id=0,
        ),
        num_query_tokens=4,
        image_token_index=4,
    )  # fmt: skip
    torch.manual_seed(seed)
    return Blip2ForConditionalGeneration(cfg).eval(), tokenizer


@dataclass
class Blip2Sampler:
    """A loaded BLIP-2 with its tokenizer, image transform and decoding parameters."""

    model: torch.nn.Module
    tokenizer: object
    cfg: CaptionerConfig
    device: str
    dtype: torch.dtype
    image_size: int = 224

    def pixels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """BLIP-2's eval transform: RGB, bicubic resize to a square, CLIP normalisation."""
        from torchvision.transforms import functional as F

        out = []
        for img in images:
            img = img.convert("RGB").resize((self.image_size, self.image_size), Image.BICUBIC)
            out.append(F.normalize(F.to_tensor(img), CLIP_MEAN, CLIP_STD))
        return torch.stack(out).to(self.device, self.dtype)

    def _prompt_ids(self, batch: int) -> torch.Tensor | None:
        if not self.cfg.prompt:
            return None
        cfg = self.model.config
        text = self.tokenizer(self.cfg.prompt, add_special_tokens=True).input_ids
        ids = [cfg.image_token_index] * cfg.num_query_tokens + list(text)
        return torch.tensor([ids] * batch, dtype=torch.long, device=self.device)

    @torch.inference_mode()
    def sample(self, images: Sequence[Image.Image], seed: int) -> list[list[str]]:
        """``n_samples`` captions per image (see module contract)."""
        c = self.cfg
        torch.manual_seed(seed)
        input_ids = self._prompt_ids(len(images))
        prompt_len = input_ids.shape[1] if input_ids is not None else self.model.config.num_query_tokens + 1
        out = self.model.generate(
            pixel_values=self.pixels(images),
            input_ids=input_ids,
            do_sample=True,
            top_p=c.top_p,
            top_k=c.top_k,
            max_new_tokens=c.max_length - 1,
            num_return_sequences=c.n_samples,
        )
        texts = self.tokenizer.batch_decode(out[:, prompt_len:], skip_special_tokens=True)
        texts = [" ".join(t.split()) for t in texts]
        return [texts[i * c.n_samples : (i + 1) * c.n_samples] for i in range(len(images))]


def load_blip2(cfg: CaptionerConfig, device: str) -> Blip2Sampler:
    """Load the configured captioner on ``device`` (fp32 on CPU whatever ``cfg.dtype`` says)."""
    dtype = _DTYPES[cfg.dtype] if device != "cpu" else torch.float32
    if cfg.model == TINY_BLIP2:
        model, tokenizer = tiny_blip2()
        size = model.config.vision_config.image_size
    else:
        from transformers import Blip2ForConditionalGeneration, Blip2Processor

        processor = Blip2Processor.from_pretrained(cfg.model, revision=cfg.revision)
        model = Blip2ForConditionalGeneration.from_pretrained(cfg.model, revision=cfg.revision, dtype=dtype)
        tokenizer = processor.tokenizer
        size = int(processor.image_processor.size["height"])
    if cfg.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, cfg.adapter).merge_and_unload()
    model = model.to(device=device, dtype=dtype).eval()
    return Blip2Sampler(model, tokenizer, cfg, device, dtype, size)
