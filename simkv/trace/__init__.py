"""The canonical Trace and its file formats."""

from simkv.trace.formats import FORMATS, load_trace, save_trace
from simkv.trace.model import TAG_CODES, TAG_NAMES, Trace

__all__ = ["Trace", "TAG_NAMES", "TAG_CODES", "FORMATS", "load_trace", "save_trace"]
