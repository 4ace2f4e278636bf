"""Mirrors brax's module path so the import swap is one prefix."""
