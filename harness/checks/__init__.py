"""`harness check ...`: properties of stored runs that must hold, each a small module (no torch at import)."""
