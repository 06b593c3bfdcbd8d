"""First-party extensions plugins of OCOS Hub."""
