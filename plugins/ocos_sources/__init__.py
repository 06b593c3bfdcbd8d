"""First-party sources plugins of OCOS Hub."""
