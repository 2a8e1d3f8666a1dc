"""Test helpers shared by the workspace's packages (never shipped in a distribution)."""
