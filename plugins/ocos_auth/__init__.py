"""First-party auth plugins of OCOS Hub."""
