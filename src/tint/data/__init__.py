"""Reading images and datasets from disk."""
