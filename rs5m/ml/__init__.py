"""Models: open_clip loading, BLIP-2, the RS detector, training, evaluation, captioner fine-tuning."""
