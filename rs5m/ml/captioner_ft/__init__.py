"""BLIP-2 LoRA fine-tuning on RSITMD/RSICD-style caption data, with METEOR/BLEU-4/CIDEr evaluation.

``config`` (FinetuneConfig, the paper preset), ``data`` (caption splits -> batches, fixtures,
fingerprints), ``train`` (the resumable LoRA loop; writes ``adapter/`` + ``finetune.json``),
``metrics`` (pycocoevalcap wrappers) and ``evaluate`` (vanilla vs tuned table). The RS3 captioner
loads the adapter through ``CaptionerConfig.adapter``.
"""
