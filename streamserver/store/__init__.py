"""Persistence adapters. `sqlite` is the embedded default."""
