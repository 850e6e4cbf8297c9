"""seqzoo's serving side: SavedModel export, a TF-Serving-compatible server, and clients."""
