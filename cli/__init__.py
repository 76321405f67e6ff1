"""The ``rs5m`` command line (may import flows; the library ``rs5m`` never does)."""
