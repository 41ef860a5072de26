"""Artefacts and configuration: paths, atomic writes and checks, the config schema, records."""
