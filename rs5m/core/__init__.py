"""The ground floor: the sample schema and reasons, stats files, the version layout, atomic I/O, locks."""
