"""How a hit loads its outputs: every artifact is verified against the size and checksum
the catalog recorded, then decoded, and a codec that could run code is refused while pickle
is off (the policy is ``codecs.pickling``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from taskcache import codecs
from taskcache.records import FILE_CODEC, ArtifactRecord, RunRecord
from taskcache.storage.remote import RemoteStore
from taskcache.storage.store import ArtifactStore

#: artifacts up to this size are read into memory once, checksummed and decoded from those
#: bytes (when their codec decodes bytes); bigger ones are mapped, checked and decoded from
#: the mapping (when it decodes mappings), or checked, then decoded from the file
SMALL_ARTIFACT = 1 << 20


def load_artifact(store: ArtifactStore | RemoteStore, artifact: ArtifactRecord, *, allow_pickle: bool) -> Any:
    """The value of one artifact. Raises MissingArtifactError / CorruptArtifactError when the
    file is gone or differs from the catalog, PickleDisabledError for a pickle while pickle
    is off, UnknownCodecError for a codec this process has not registered."""
    codec = codecs.get_codec(artifact.codec)
    codecs.check_loadable(codec, allow_pickle=allow_pickle, output=artifact.name)
    where = (artifact.relpath, artifact.size, artifact.checksum)
    small = artifact.size <= SMALL_ARTIFACT
    if small and codecs.decodes_bytes(codec):  # the bytes that were checked are decoded
        return codec.decode_bytes(store.read_verified(*where))
    if not small and codecs.decodes_mapped(codec):  # one mapping, checked then decoded
        return codec.decode_mapped(store.map_verified(*where))
    return codec.decode(store.verify(*where))


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
