"""Placeholder: the live dashboard plugin."""
