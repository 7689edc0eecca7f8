"""Files and folders: atomic writes and checked reads, checkpoints, run folders, reports,
pictures, seeded random streams, and loading pretrained models from local folders."""
