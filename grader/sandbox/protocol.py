"""The wire format between the trusted grader and a sandboxed worker: data only, never pickle.

A message is a JSON header plus binary blobs, each length-prefixed:

    u64 header length | header (UTF-8 JSON) | u64 blob count | (u64 length | bytes) * count

Values are plain JSON with tagged objects for richer types; pandas frames and series travel as
Arrow IPC streams in blobs. Decoding builds fresh pandas/pyarrow objects from the bytes, so
whatever class the other side used, the receiver only ever holds real built-in, pandas or
numpy values: a rigged `__eq__` cannot survive the trip.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import select
import struct
import time
from pathlib import PurePath
from typing import Any

MAX_MESSAGE_BYTES = 256 << 20
MAX_HEADER_BYTES = 16 << 20
"""Values travel in the JSON header only when small (frames go in blobs), and each JSON byte
can become dozens of bytes of Python objects: the header gets a budget of its own."""
MAX_FRAME_ROWS = 20_000_000
MAX_FRAME_CELLS = 200_000_000
"""A frame may not decode to more than this: a length field costs nothing to send."""
MAX_DECODED_BYTES = 768 << 20
"""What the frames of one answer may cost the trusted side once converted to pandas, by the
estimate of `decoded_bytes` (a null or time64 column sends a bit per cell and receives a
Python object per cell: 20M such rows are 153 MB on the wire and gigabytes decoded)."""
OBJECT_CELL_BYTES = 64
"""Estimated bytes per cell of a column pandas holds as Python objects (a pointer and the
object: None is shared, a datetime.time or a str is not)."""
_U64 = struct.Struct("<Q")


class ProtocolError(Exception):
    """The peer sent something that is not a valid message, or went away."""


class UnsupportedValue(TypeError):
    """A value of a type the protocol does not carry."""


# ---------------------------------------------------------------------------- values


def encode(value: Any, blobs: list[bytes]) -> Any:
    """Turn `value` into JSON-able data, appending binary parts to `blobs`."""
    import numpy as np
    import pandas as pd

    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else {"$float": repr(f)}
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, pd.DataFrame):
        blobs.append(_frame_to_ipc(value))
        return {"$frame": len(blobs) - 1}
    if isinstance(value, pd.Series):
        blobs.append(_frame_to_ipc(value.to_frame(name="__value__")))
        return {"$series": len(blobs) - 1, "name": encode(value.name, blobs)}
    if value is pd.NaT:
        return {"$nat": True}
    if isinstance(value, pd.Timestamp | dt.datetime):
        return {"$ts": pd.Timestamp(value).isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, pd.Timedelta | dt.timedelta | np.timedelta64):
        return {"$td": int(pd.Timedelta(value).value)}
    if value is pd.NA:
        return {"$na": True}
    if isinstance(value, bytes | bytearray):
        blobs.append(bytes(value))
        return {"$bytes": len(blobs) - 1}
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, list | tuple):
        return [encode(v, blobs) for v in value]
    if isinstance(value, np.ndarray):
        return [encode(v, blobs) for v in value.tolist()]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str) or key.startswith("$"):
                raise UnsupportedValue(f"dict key {key!r}: only plain string keys are supported")
            out[key] = encode(item, blobs)
        return out
    raise UnsupportedValue(f"a value of type {type(value).__module__}.{type(value).__qualname__}")


def decode(data: Any, blobs: list[bytes], budget: list[int] | None = None) -> Any:
    """Inverse of `encode`; builds only built-in, numpy and pandas objects.

    Anything malformed (bad tags, bad numbers, too deep, too big) raises `ProtocolError`.
    `budget` (a one-item list, spent as frames are decoded) lets several values of one answer
    share `MAX_DECODED_BYTES`.
    """
    try:
        return _decode(data, blobs, [MAX_DECODED_BYTES] if budget is None else budget)
    except ProtocolError:
        raise
    except (ValueError, TypeError, OverflowError, RecursionError, KeyError) as exc:
        raise ProtocolError(f"malformed value: {type(exc).__name__}") from None


def _decode(data: Any, blobs: list[bytes], budget: list[int]) -> Any:
    """`budget[0]`: the decoded bytes the rest of this answer's frames may still cost (one
    blob named a thousand times costs a thousand times)."""
    import pandas as pd

    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [_decode(v, blobs, budget) for v in data]
    if not isinstance(data, dict):
        raise ProtocolError(f"unexpected JSON value of type {type(data).__name__}")
    if "$frame" in data:
        return _ipc_to_frame(_blob(blobs, data["$frame"]), budget)
    if "$series" in data:
        frame = _ipc_to_frame(_blob(blobs, data["$series"]), budget)
        if list(frame.columns) != ["__value__"]:
            raise ProtocolError("malformed series")
        series = frame["__value__"]
        series.name = _decode(data.get("name"), blobs, budget)
        return series
    if "$float" in data:
        return float(str(data["$float"]))
    if "$ts" in data:
        return pd.Timestamp(str(data["$ts"]))
    if "$date" in data:
        return dt.date.fromisoformat(str(data["$date"]))
    if "$td" in data:
        return pd.Timedelta(int(data["$td"]))
    if "$nat" in data:
        return pd.NaT
    if "$na" in data:
        return pd.NA
    if "$bytes" in data:
        return _blob(blobs, data["$bytes"])
    return {str(k): _decode(v, blobs, budget) for k, v in data.items()}


def _blob(blobs: list[bytes], index: Any) -> bytes:
    if not isinstance(index, int) or not 0 <= index < len(blobs):
        raise ProtocolError("reference to a missing blob")
    return blobs[index]


def _frame_to_ipc(frame: Any) -> bytes:
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=True)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _ipc_to_frame(data: bytes, budget: list[int] | None = None) -> Any:
    import pyarrow as pa

    budget = [MAX_DECODED_BYTES] if budget is None else budget
    try:
        _refuse_compression(data)
        table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
        for column in table.schema:
            if not _flat(column.type):
                raise ProtocolError(f"column {column.name!r} has a nested type ({column.type})")
        if table.num_rows > MAX_FRAME_ROWS or table.num_rows * table.num_columns > MAX_FRAME_CELLS:
            raise ProtocolError(f"frame too large ({table.num_rows} rows)")
        cost = decoded_bytes(table)
        if cost > budget[0]:
            raise ProtocolError(
                f"frame too large to read ({table.num_rows} rows would take about "
                f"{cost >> 20} MiB; at most {MAX_DECODED_BYTES >> 20} MiB per answer)"
            )
        budget[0] -= cost
        # Every offset and length checked against its buffers: a forged one would make the
        # conversion below read outside them (a crash of the trusted process).
        table.validate(full=True)
        return table.to_pandas()
    except (pa.ArrowException, OSError, ValueError, TypeError, LookupError, struct.error) as exc:
        raise ProtocolError(f"malformed frame: {exc}") from None


def decoded_bytes(table: Any) -> int:
    """An upper estimate of what `table.to_pandas()` allocates, from its schema and buffer
    sizes alone (nothing converted yet): fixed-width columns cost their width per row, columns
    pandas holds as Python objects `OBJECT_CELL_BYTES` per row plus their data, and the index
    columns count like any other."""
    import pyarrow as pa

    total = 0
    rows = table.num_rows
    for column in table.columns:
        kind = column.type
        if pa.types.is_dictionary(kind):  # a categorical: codes per row, values once
            total += rows * 8 + column.nbytes
            continue
        if pa.types.is_timestamp(kind) or pa.types.is_duration(kind):
            total += rows * 8
        elif pa.types.is_boolean(kind):
            total += rows
        elif (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and column.null_count:
            total += rows * 8 + rows  # nulls: float64 or a masked array
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
            total += rows * 8
        else:  # null, strings, binary, date, time, decimal, ...: an object per cell
            total += rows * OBJECT_CELL_BYTES + column.nbytes
    return total


def _flat(kind: Any) -> bool:
    """Whether a column type converts to pandas at a bounded cost per byte: no lists, structs,
    maps or unions (an empty list costs nothing to send and a Python object to receive)."""
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        return _flat(kind.value_type)
    return not (pa.types.is_nested(kind) or pa.types.is_union(kind))


def _refuse_compression(data: bytes) -> None:
    """Refuse a stream whose record or dictionary batches are compressed (a small message
    could inflate to any size). `encode` never compresses, so only a forged stream does.

    Reads the `compression` field of each batch's flatbuffer metadata (Arrow's Message.fbs:
    Message.header is field 2; RecordBatch.compression is field 3; DictionaryBatch.data is
    field 1)."""
    import pyarrow as pa

    for message in pa.ipc.MessageReader.open_stream(pa.py_buffer(data)):
        meta = message.metadata.to_pybytes()
        batch = _fb_table(meta, _fb_field(meta, _fb_root(meta), 2))
        if message.type == "dictionary batch":
            batch = _fb_table(meta, _fb_field(meta, batch, 1))
        elif message.type != "record batch":
            continue
        if _fb_field(meta, batch, 3):
            raise ProtocolError("compressed frames are not accepted")


def _fb_root(buf: bytes) -> int:
    return struct.unpack_from("<I", buf, 0)[0]


def _fb_field(buf: bytes, table: int, index: int) -> int:
    """Position of field `index` of the flatbuffer table at `table`, or 0 when absent."""
    vtable = table - struct.unpack_from("<i", buf, table)[0]
    size = struct.unpack_from("<H", buf, vtable)[0]
    if 4 + 2 * index >= size:
        return 0
    offset = struct.unpack_from("<H", buf, vtable + 4 + 2 * index)[0]
    return table + offset if offset else 0


def _fb_table(buf: bytes, field: int) -> int:
    """The table a reference field at `field` points to."""
    if not field:
        raise ProtocolError("malformed frame metadata")
    return field + struct.unpack_from("<I", buf, field)[0]


# ---------------------------------------------------------------------------- framing


def write_message(
    fd: int,
    header: dict[str, Any],
    blobs: list[bytes] = (),  # type: ignore[assignment]
    deadline: float | None = None,
) -> None:
    """Write one message to the file descriptor `fd`; `TimeoutError` once `deadline`
    (monotonic) has passed with the message not yet written (a reader that stopped reading)."""
    head = json.dumps(header, allow_nan=False).encode()
    parts = [_U64.pack(len(head)), head, _U64.pack(len(blobs))]
    for blob in blobs:
        parts += [_U64.pack(len(blob)), blob]
    payload = memoryview(b"".join(parts))
    if deadline is None:
        while payload:
            payload = payload[os.write(fd, payload) :]
        return
    blocking = os.get_blocking(fd)
    os.set_blocking(fd, False)
    try:
        while payload:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], left)[1]:
                raise TimeoutError
            try:
                payload = payload[os.write(fd, payload) :]
            except BlockingIOError:
                pass
    finally:
        os.set_blocking(fd, blocking)


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    while n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                raise TimeoutError
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise ProtocolError("the worker closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_message(fd: int, deadline: float | None = None) -> tuple[dict[str, Any], list[bytes]]:
    """Read one message from `fd`; `TimeoutError` once `deadline` (monotonic) has passed."""
    budget = MAX_MESSAGE_BYTES

    def length() -> int:
        nonlocal budget
        (n,) = _U64.unpack(_read_exact(fd, 8, deadline))
        if n > budget:
            raise ProtocolError("message too large")
        budget -= n
        return n

    try:
        size = length()
        if size > MAX_HEADER_BYTES:
            raise ProtocolError("message header too large")
        header = json.loads(_read_exact(fd, size, deadline))
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, a 5,000-digit number, ...
        raise ProtocolError("malformed message header") from None
    if not isinstance(header, dict):
        raise ProtocolError("malformed message header")
    (count,) = _U64.unpack(_read_exact(fd, 8, deadline))
    if count > 10_000:
        raise ProtocolError("too many blobs")
    blobs = [_read_exact(fd, length(), deadline) for _ in range(count)]
    return header, blobs
