"""One module per instrument; each exposes `INSTRUMENT` (see adapter/registry.py)."""
