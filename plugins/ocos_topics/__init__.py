"""First-party topics plugins of OCOS Hub."""
