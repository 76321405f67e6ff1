"""The packaging barrier: kept pairs become train/val webdataset shards and manifests."""
