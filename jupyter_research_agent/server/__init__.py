"""Jupyter Server adapter: the extension app and its HTTP handlers."""
