"""Fetch the metadata of the PUB11 sources from where they live today (``rs5m fetch-metadata``).

``catalogue.yaml`` says where each source lives; ``run.fetch_metadata`` plans, skips what the manifest
already has, and fetches the rest over resumable HTTP or ``huggingface_hub``.
"""
