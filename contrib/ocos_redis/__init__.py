"""Redis scale-out plugin (placeholder until implemented)."""
