"""Adapters: file formats, HTTP clients, subprocesses, bulk loaders; no use cases."""
