"""The features: one module each, holding all of its behaviour."""
