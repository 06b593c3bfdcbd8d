"""NATS JetStream scale-out plugin (placeholder until implemented)."""
