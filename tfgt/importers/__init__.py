"""Importers of public pretrained GANs into tfgt bundles, one module per
format with its entry (`registry.Importer`, the formats of
`python -m tfgt.import_source --from`), and the safe readers of their
checkpoint files (checkpoint_files)."""
