"""Importers of public pretrained GANs into tfgt bundles, and the safe
readers of their checkpoint files (checkpoint_files)."""
