"""Data sources (Fashion-MNIST IDX files, image folders, TFDS) and pipelines."""
