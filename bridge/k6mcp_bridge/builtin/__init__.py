"""Plugins shipped with the bridge, registered through the same entry points as any other."""
