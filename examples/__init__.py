"""Example plug-ins for swarmsim, one of each kind (docs/plugins.md walks through them)."""
