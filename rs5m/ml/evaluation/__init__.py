"""GeoRSCLIP evaluation: zero-shot classification, cross-modal retrieval and semantic localisation.

Protocols follow the RS5M reference §10-§11 exactly; entry point
:func:`rs5m.ml.evaluation.run.run_evaluation`.
"""
