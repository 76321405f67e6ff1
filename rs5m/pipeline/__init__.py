"""The PUB11 pipeline: the stage registry, the plan, and one package per stage."""
