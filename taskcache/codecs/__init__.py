"""Codecs: how a value becomes a file and back. ``registry`` chooses a codec for a value
and holds the codec contract (:class:`Codec`); the built-in codecs are ``frames`` (pandas
as Parquet or Arrow IPC, with ``frame_arrays``), ``npy``, ``tagged_json``, ``modules``,
``matches`` (regex match objects), ``closed_files`` (file objects after ``with open(...)``),
``pickling`` (opt-in pickle, and the policy that refuses to decode it when disabled), and
``files`` (copies of the files a run wrote)."""

import io
import types

from taskcache.codecs.closed_files import ClosedFileCodec
from taskcache.codecs.files import FileContent, FileCopyCodec
from taskcache.codecs.frames import ArrowCodec, ParquetCodec
from taskcache.codecs.matches import MatchCodec
from taskcache.codecs.modules import ModuleCodec
from taskcache.codecs.npy import NpyCodec, NpyScalarCodec
from taskcache.codecs.pickling import (
    PICKLE,
    check_import,
    check_loadable,
    check_type,
    imports_code,
)
from taskcache.codecs.registry import (
    Codec,
    DecodesBytes,
    DecodesMapped,
    codec_for,
    decodes_bytes,
    decodes_mapped,
    get_codec,
    keeps_hash,
    register_codec,
    registered_codecs,
)
from taskcache.codecs.tagged_json import JsonCodec

__all__ = [
    "Codec",
    "DecodesBytes",
    "DecodesMapped",
    "FileContent",
    "check_import",
    "check_loadable",
    "check_type",
    "codec_for",
    "decodes_bytes",
    "decodes_mapped",
    "get_codec",
    "keeps_hash",
    "imports_code",
    "register_codec",
    "registered_codecs",
]

_FRAMES = ("pandas.core.frame.DataFrame", "pandas.core.series.Series")
_PARQUET, _ARROW = ParquetCodec(), ArrowCodec()
for _dotted in _FRAMES:
    register_codec(_dotted, _PARQUET)
    register_codec(_dotted, _ARROW, first=False)
register_codec("numpy.ndarray", NpyCodec())
register_codec("numpy.generic", NpyScalarCodec())
_JSON = JsonCodec()
for _t in (type(None), bool, int, float, complex, str, bytes, bytearray, list, tuple, dict,
           set, frozenset, "decimal.Decimal", "datetime.date", "datetime.time",
           "datetime.timedelta"):
    register_codec(_t, _JSON)
register_codec(types.ModuleType, ModuleCodec())
register_codec("re.Match", MatchCodec())
_CLOSED_FILES = ClosedFileCodec()
for _file_type in (io.TextIOWrapper, io.BufferedReader, io.BufferedWriter, io.FileIO):
    register_codec(_file_type, _CLOSED_FILES)
register_codec(object, PICKLE, first=False)
register_codec(FileContent, FileCopyCodec())
