"""Pydantic request and response models, one module per feature, mirroring ``contracts/openapi.yaml``."""
