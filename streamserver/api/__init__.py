"""JSON HTTP handlers, one resource per module."""
