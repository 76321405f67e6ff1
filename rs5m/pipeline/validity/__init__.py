"""The validity stage: decodable, not too small, not a bomb; content hashes for dedup."""
