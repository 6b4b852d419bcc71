"""Batch preprocessing: real or synthetic images become (image, layout, caption) triples in webdataset shards."""
