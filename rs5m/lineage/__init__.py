"""Lineage: the one DuckDB writer, the funnel and reasons, versions, why a sample left."""
