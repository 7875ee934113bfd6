"""How a hit loads its outputs: every artifact is verified against the size and checksum
the catalog recorded, then decoded, and a codec that could run code is refused while pickle
is off (the policy is ``codecs.pickling``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from taskcache import codecs
from taskcache.hashing import record_restored
from taskcache.records import FILE_CODEC, ArtifactRecord, RunRecord
from taskcache.storage.remote import RemoteStore
from taskcache.storage.store import ArtifactStore

#: artifacts up to this size are read into memory once, checksummed and decoded from those
#: bytes (when their codec decodes bytes); bigger ones are mapped, checked and decoded from
#: the mapping (when it decodes mappings), or checked, then decoded from the file
SMALL_ARTIFACT = 1 << 20


def load_artifact(store: ArtifactStore | RemoteStore, artifact: ArtifactRecord, *, allow_pickle: bool) -> Any:
    """The value of one artifact. Raises MissingArtifactError / CorruptArtifactError when the
    file is gone or differs from the catalog (its type included), PickleDisabledError for a
    pickle, or a module this process has not imported, while pickle is off,
    UnknownCodecError for a codec this process has not registered.

    When the decoded value hashes differently from the stored one (``restored_hash``), the
    hasher is told, so runs that take it as an input key as they did with the original."""
    if artifact.restored_hash is not None:
        record_restored(artifact.restored_hash, artifact.value_hash)
    return _decode(store, artifact, allow_pickle=allow_pickle)


def _decode(store: ArtifactStore | RemoteStore, artifact: ArtifactRecord, *, allow_pickle: bool) -> Any:
    codec = codecs.get_codec(artifact.codec)
    codecs.check_loadable(codec, allow_pickle=allow_pickle, output=artifact.name)
    where = (artifact.relpath, artifact.size, artifact.checksum)
    small = artifact.size <= SMALL_ARTIFACT
    if codecs.imports_code(codec):  # a module's name: checked before anything is imported
        data = store.read_verified(*where)
        codecs.check_import(codec, data, allow_pickle=allow_pickle, output=artifact.name)
        value = codec.decode_bytes(data)
    elif small and codecs.decodes_bytes(codec):  # the bytes that were checked are decoded
        value = codec.decode_bytes(store.read_verified(*where))
    elif not small and codecs.decodes_mapped(codec):  # one mapping, checked then decoded
        value = codec.decode_mapped(store.map_verified(*where))
    else:
        value = codec.decode(store.verify(*where))
    if artifact.codec == FILE_CODEC:  # a file's copy: its type_name says "file", it decodes to bytes
        return value
    return codecs.check_type(value, artifact.type_name, relpath=artifact.relpath)


def load_outputs(
    store: ArtifactStore | RemoteStore, run: RunRecord, names: Iterable[str] | None = None, *,
    allow_pickle: bool,
) -> dict[str, Any]:
    """``{name: value}`` of the run's outputs, or of ``names`` only (KeyError naming the
    ones the run does not have). The copies of files it wrote are loaded only by name: a
    hit puts those back on disk (see the runner)."""
    wanted = None if names is None else set(names)
    values: dict[str, Any] = {}
    for artifact in run.artifacts:
        if (artifact.name in wanted) if wanted is not None else artifact.codec != FILE_CODEC:
            values[artifact.name] = load_artifact(store, artifact, allow_pickle=allow_pickle)
    if wanted is not None and (missing := wanted - values.keys()):
        raise KeyError(f"run #{run.id} has no output named {', '.join(sorted(missing))}")
    return values
