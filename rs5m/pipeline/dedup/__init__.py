"""The dedup barrier: URL, content and perceptual near-duplicates across sources, priority rule."""
