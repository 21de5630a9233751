"""Reusable experiments: the code a benchmark and a notebook both run (one module per topic)."""
