"""Data: manifests of clips, dataset adapters (one file per dataset) and generic datasets."""
