"""Writer for constml's reference-vector files (format CMLREF01).

A file is a flat list of named little-endian arrays, read by tests/common/refvec.rs
with `include_bytes!` on the host and, later, in firmware. Layout:

    b"CMLREF01"                     magic
    u32 count                       number of entries
    per entry:
        u16 name_len, name (UTF-8)
        u8  dtype   1 = f32, 2 = f64, 3 = i64, 4 = u8 (bools and UTF-8 text)
        u8  ndim,   then ndim x u32 dims (row-major, C order)
        data        prod(dims) elements, little-endian

Every file carries an entry "meta" (u8 text) naming the generator and the
versions of the libraries that produced it.
"""
import struct

import numpy as np

_DTYPES = {np.dtype("float32"): 1, np.dtype("float64"): 2, np.dtype("int64"): 3, np.dtype("uint8"): 4}


def text(s: str) -> np.ndarray:
    """A UTF-8 string as a u8 array."""
    return np.frombuffer(s.encode("utf-8"), dtype=np.uint8)


def write(path: str, entries: dict, meta: str) -> None:
    """Writes `entries` (name -> numpy array; bool arrays become u8) plus "meta"."""
    items = dict(entries)
    items["meta"] = text(meta)
    out = bytearray(b"CMLREF01")
    out += struct.pack("<I", len(items))
    for name, arr in items.items():
        a = np.asarray(arr)
        if a.dtype == np.bool_:
            a = a.astype(np.uint8)
        if a.dtype not in _DTYPES:
            raise TypeError(f"{name}: unsupported dtype {a.dtype}")
        a = np.ascontiguousarray(a)
        nb = name.encode("utf-8")
        out += struct.pack("<H", len(nb)) + nb
        out += struct.pack("<BB", _DTYPES[a.dtype], a.ndim)
        for d in a.shape:
            out += struct.pack("<I", d)
        out += a.astype(a.dtype.newbyteorder("<")).tobytes()
    with open(path, "wb") as f:
        f.write(bytes(out))


def versions() -> str:
    """Versions of the reference libraries that are importable here."""
    import platform
    parts = [f"python {platform.python_version()}", f"numpy {np.__version__}"]
    for mod in ("torch", "transformers", "sklearn"):
        try:
            m = __import__(mod)
            parts.append(f"{mod} {m.__version__}")
        except ImportError:
            pass
    return ", ".join(parts)
