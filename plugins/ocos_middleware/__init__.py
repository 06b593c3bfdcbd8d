"""First-party middleware plugins of OCOS Hub."""
