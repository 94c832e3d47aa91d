"""`make bench-int8`'s parts: a varied corpus, the quality measures, the variants tried."""
