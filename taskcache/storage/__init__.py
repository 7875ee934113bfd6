"""Artifact files: ``store`` (atomic writes, checksums, verified reads, deletes, sweeps),
``remote`` (the same on any fsspec URL, with a local read-through copy),
``verified`` (files this process already checked, by identity) and ``folders`` (the cache
folder and catalog file: private, refused when others can write to them)."""

from taskcache.storage.store import ArtifactStore, StoredFile, checksum_file, sanitize_name

__all__ = ["ArtifactStore", "StoredFile", "checksum_file", "sanitize_name"]
