"""Measuring: the quality of a world's models, and (later) episodes, variance and reports."""
