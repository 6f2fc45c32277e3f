"""Data layer: the clip record, media IO, datasets, splits, preprocessing, synthetic corpus."""
