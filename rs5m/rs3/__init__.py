"""RS3: caption the label-only RS datasets (fMoW, BigEarthNet, MillionAID) and build meta-captions.

Modules: ``config`` (RS3Config), ``readers`` (official layouts, reason codes), ``metacaption`` +
``templates`` (geometa), ``geo`` + ``geostats`` (geocoding, seasons, UTM, counts, world map),
``blip2`` + ``captioner`` (sampling, CLIP re-rank, rotation pick, provenance), ``places`` (place names),
``stage`` + ``pub11`` + ``report`` (what the ``rs3`` flow calls), ``sample`` (the miniature RS3 world).
Importing this package loads no model and no torch.
"""
