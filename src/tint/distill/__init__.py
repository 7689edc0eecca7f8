"""Distilling a teacher into a tiny student on generated images."""
