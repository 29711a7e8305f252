"""The wire format refuses what a hostile worker could send to exhaust or crash the grader."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from grader.sandbox import protocol


def _stream(table: pa.Table, **options) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(**options)) as w:
        w.write_table(table)
    return sink.getvalue()


def test_frames_round_trip_including_categoricals():
    frame = pd.DataFrame({"a": range(5), "b": pd.Categorical(list("abcab"))}, index=list("vwxyz"))
    blobs: list[bytes] = []
    back = protocol.decode(protocol.encode(frame, blobs), blobs)
    pd.testing.assert_frame_equal(back, frame)


@pytest.mark.parametrize("codec", ["zstd", "lz4"])
def test_compressed_frames_are_refused(codec):
    # Compressed record batches and dictionary batches could inflate far past the message size.
    table = pa.table({"a": [0] * 1000, "b": pa.array(["x", "y"] * 500).dictionary_encode()})
    with pytest.raises(protocol.ProtocolError, match="compressed"):
        protocol.decode({"$frame": 0}, [_stream(table, compression=codec)])


def test_a_huge_length_with_no_buffers_is_refused():
    data = _stream(pa.table({"n": pa.nulls(10**9)}))
    assert len(data) < 1000  # a billion rows that cost nothing to send
    with pytest.raises(protocol.ProtocolError, match="too large"):
        protocol.decode({"$frame": 0}, [data])


@pytest.mark.parametrize(
    "bad",
    [
        {"$float": "x"},
        {"$td": "zz"},
        {"$td": 10**30},
        {"$date": 5},
        {"$ts": "not a time"},
        {"$frame": 3},
        {"$frame": 0},
    ],
)
def test_malformed_values_raise_protocol_errors_only(bad):
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(bad, [b"not arrow"])


def test_deep_nesting_is_a_protocol_error():
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(deep, [])


def test_nested_columns_are_refused_before_conversion():
    # A list column of empty lists is cheap to send and costs a Python object per row here.
    data = _stream(pa.table({"x": pa.array([[]] * 1000, type=pa.list_(pa.int8()))}))
    with pytest.raises(protocol.ProtocolError, match="nested"):
        protocol.decode({"$frame": 0}, [data])


def test_an_oversized_header_is_refused_unread():
    import os
    import struct

    read, write = os.pipe()
    try:
        os.write(write, struct.pack("<Q", protocol.MAX_HEADER_BYTES + 1))
        with pytest.raises(protocol.ProtocolError, match="header too large"):
            protocol.read_message(read)
    finally:
        os.close(read)
        os.close(write)


def test_writing_to_a_peer_that_stopped_reading_times_out():
    import os
    import time

    read, write = os.pipe()
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            protocol.write_message(write, {"op": "call"}, [b"x" * (4 << 20)], started + 1)
        assert time.monotonic() - started < 5
        assert os.get_blocking(write)  # left as it was found
    finally:
        os.close(read)
        os.close(write)


def test_a_frame_with_forged_offsets_is_refused_not_read_out_of_bounds():
    # Found by fuzzing: a string column whose offsets point outside its data buffer used to
    # crash the trusted process (SIGSEGV) inside to_pandas.
    data = (Path(__file__).parent / "data" / "forged_offsets.arrow").read_bytes()
    with pytest.raises(protocol.ProtocolError, match="malformed frame"):
        protocol.decode({"$frame": 0}, [data])


def test_corrupt_arrow_metadata_is_a_protocol_error():
    good = _stream(pa.table({"a": [1, 2, 3]}))
    for cut in range(8, len(good), 7):
        broken = good[:cut] + bytes([good[cut] ^ 0xFF]) + good[cut + 1 :]
        try:
            protocol.decode({"$frame": 0}, [broken])
        except protocol.ProtocolError:
            pass  # anything else (OSError, struct.error, a crash) fails the test


def test_a_header_with_a_huge_number_is_a_protocol_error():
    import os
    import struct

    head = b'{"value": ' + b"9" * 5000 + b"}"
    read, write = os.pipe()
    try:
        os.write(write, struct.pack("<Q", len(head)) + head + struct.pack("<Q", 0))
        with pytest.raises(protocol.ProtocolError):
            protocol.read_message(read)
    finally:
        os.close(read)
        os.close(write)
