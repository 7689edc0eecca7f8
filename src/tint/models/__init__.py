"""Image classifiers: the glyph teacher and, later, the students."""
