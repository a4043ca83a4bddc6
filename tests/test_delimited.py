"""numeric_rows: the bulk parse of CSV/TSV bodies gives float()'s values or refuses."""

from __future__ import annotations

import csv
import io
import math
import struct
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.core.formats import delimited
from tui.core.formats.delimited import numeric_rows


def bits(value: float) -> int:
    """The float's bit pattern: tells -0.0 from 0.0; every NaN is one pattern."""
    return -1 if math.isnan(value) else struct.unpack("<q", struct.pack("<d", value))[0]


def table_of(body: bytes, delimiter: str) -> list[list[float]]:
    """The reference: float() of every cell of every line."""
    lines = body.decode().split("\n")[:-1]
    return [[float(cell) for cell in line.split(delimiter)] for line in lines]


def assert_exact(table: np.ndarray | None, expected: list[list[float]]) -> None:
    assert table is not None
    assert table.shape == (len(expected), len(expected[0]))
    assert [[bits(v) for v in row] for row in table.tolist()] == [
        [bits(v) for v in row] for row in expected
    ]


# Cells as loggers and people write them: repr, fixed decimals, g, e, ints, non-finite.
FLOATS = st.floats(allow_nan=True, allow_infinity=True)  # subnormals and -0.0 included
SPELLINGS = st.one_of(
    FLOATS.map(repr),
    FLOATS.map(lambda x: f"{x:.4f}"),
    FLOATS.map(lambda x: f"{x:g}"),
    FLOATS.map(lambda x: f"{x:.17e}"),
    FLOATS.map(lambda x: f"{x:.30f}"),  # long digit strings
    st.integers(-(2**70), 2**70).map(str),  # beyond 64 bits too
    st.sampled_from(["-0", "0", "1.", ".5", "01", "+1", "1e400", "-1e-400", "4.9e-324"]),
    st.sampled_from(["Infinity", "NaN", "-nan", "nan5", "6e301", "5e302", "4e303", "3e304"]),
)


@settings(max_examples=300)
@given(
    width=st.integers(1, 5),
    data=st.data(),
    delimiter=st.sampled_from([",", "\t", ";"]),
    line_end=st.sampled_from(["\n", "\r\n"]),
    scratch=st.booleans(),
)
def test_any_table_reads_as_float_of_each_cell_or_not_at_all(
    width: int, data: st.DataObject, delimiter: str, line_end: str, scratch: bool
) -> None:
    rows = data.draw(st.lists(st.lists(SPELLINGS, min_size=width, max_size=width), min_size=1))
    body = "".join(delimiter.join(row) + line_end for row in rows).encode()
    table = numeric_rows(body, delimiter, width, scratch=scratch)
    if table is not None:
        assert_exact(table, [[float(cell) for cell in row] for row in rows])


PLAIN = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).filter(
        lambda x: x not in (6e301, 5e302, 4e303, 3e304)
    ),
    st.integers(-(2**63), 2**64 - 1),
)


@settings(max_examples=200)
@given(st.lists(st.lists(PLAIN, min_size=3, max_size=3), min_size=1, max_size=50))
def test_what_python_writes_is_always_read_in_bulk(rows: list[list[float | int]]) -> None:
    """repr() of floats and str() of 64-bit ints, as Keras and DVCLive write them."""
    body = "".join(",".join(map(str, row)) + "\n" for row in rows).encode()
    assert_exact(numeric_rows(body, ",", 3), [[float(v) for v in row] for row in rows])


def test_csv_module_rows_with_crlf_and_non_finite_values() -> None:
    out = io.StringIO(newline="")
    writer = csv.writer(out)  # Keras' CSVLogger writes through it: \r\n line ends
    rows = [[0, 0.5, math.nan], [1, -math.inf, 1e-05], [2, math.inf, -0.0], [3, 5e-324, 0.0]]
    writer.writerows(rows)
    body = out.getvalue().encode()
    assert body.count(b"\r\n") == 4
    assert_exact(numeric_rows(body, ",", 3), [[float(v) for v in row] for row in rows])


def test_tsv_with_consecutive_non_finite_cells() -> None:
    body = b"nan\tnan\tnan\tinf\n-inf\t-inf\tnan\t1\n"
    assert_exact(numeric_rows(body, "\t", 4), table_of(body, "\t"))


@pytest.mark.parametrize(
    "body",
    [
        b"1,2,3\n4\n",  # a long row, then a short one: four cells for two rows of two
        b"1\n2,3,4\n",
        b"1,2\n3,4,5\n6\n7,8\n",
    ],
)
def test_short_and_long_rows_that_make_up_for_each_other_are_refused(body: bytes) -> None:
    assert numeric_rows(body, ",", 2) is None


@pytest.mark.parametrize(
    "body",
    [
        b"1,2,3,4,5\n6,7,8\n",  # a long row, then a short one, in a body with line markers
        b"1,2,3\n4,5,6,7,8\n",
        b"1,2,3,4\n5,6,7,8,9\n10,11,12\n",
    ],
)
def test_rows_that_make_up_for_each_other_in_a_wide_body_are_refused(body: bytes) -> None:
    assert delimited._MARKED_WIDTH <= 4
    assert numeric_rows(body, ",", 4) is None


def test_a_cell_equal_to_the_line_marker_refuses_a_wide_body() -> None:
    """Wide bodies end each line with a marker number: a cell equal to it is refused, so
    no value is mistaken for a line end; narrow bodies read it as data."""
    body = b"1,2,3,4\n5,6,7," + delimited._MARKER.strip(b",") + b"\n"
    assert numeric_rows(body, ",", 4) is None
    near = b"1,2,3,4\n5,6,7,7.5e305\n"
    assert_exact(numeric_rows(near, ",", 4), table_of(near, ","))
    narrow = b"1," + delimited._MARKER.strip(b",") + b"\n"
    assert_exact(numeric_rows(narrow, ",", 2), table_of(narrow, ","))


@pytest.mark.parametrize("row", [0, 3, 200])
def test_integer_minus_zero_in_a_wide_body_is_refused(row: int) -> None:
    lines = [b"%d,0.5,0.25,%d,1\r\n" % (i + 1, i) for i in range(300)]
    lines[row] = lines[row].replace(b",1\r", b",-0\r")
    assert numeric_rows(b"".join(lines), ",", 5) is None
    lines[row] = lines[row].replace(b",-0\r", b",-0.0\r")
    body = b"".join(lines)
    assert_exact(numeric_rows(body, ",", 5), table_of(body.replace(b"\r", b""), ","))


@pytest.mark.parametrize("cell", [b"6e301", b"1e308", b"0"])
def test_any_number_is_data_beside_the_framing(cell: bytes) -> None:
    """No value stands for a line end or a frame: what a cell holds is what it reads as."""
    for body, width in ((b"1,2\n3," + cell + b"\n", 2), (b"1," + cell + b",2\n", 3)):
        assert_exact(numeric_rows(body, ",", width), table_of(body, ","))


@pytest.mark.parametrize(
    "body",
    [b"nan,5e302\n", b"inf,4e303\n", b"-inf,3e304\n", b"nan,1\n2,5.0e302\n"],
)
def test_a_cell_equal_to_a_sentinel_is_refused_when_that_sentinel_is_used(body: bytes) -> None:
    assert numeric_rows(body, ",", 2) is None


def test_a_cell_equal_to_an_unused_sentinel_is_data() -> None:
    body = b"1,5e302\n2,4e303\n3,3e304\n"
    assert_exact(numeric_rows(body, ",", 2), table_of(body, ","))


@pytest.mark.parametrize("body", [b"-0,1\n", b"1,-0\n", b"1,-0\r\n", b"0,1\n1,\r-0\n"])
def test_integer_minus_zero_is_refused(body: bytes) -> None:
    """simdjson reads it as the integer 0; float() gives -0.0."""
    assert numeric_rows(body, ",", 2) is None


def test_integer_minus_zero_far_down_is_refused() -> None:
    body = b"".join(b"%d,0.5\n" % i for i in range(1, 500)) + b"7,-0\n"
    assert numeric_rows(body, ",", 2) is None


def test_float_minus_zero_and_exponent_minus_zero_are_read() -> None:
    body = b"0,-0.0\n-0e0,1e-0\n" + b"".join(b"%d,0.0\n" % i for i in range(100))
    table = numeric_rows(body, ",", 2)
    assert_exact(table, table_of(body, ","))
    assert table is not None and math.copysign(1, table[0, 1]) == -1


@pytest.mark.parametrize(
    ("body", "delimiter"),
    [
        (b'1,"2"\n', ","),  # quoted
        (b"1,2\t3\n", "\t"),  # a comma inside a TSV cell
        (b"1\xc2\xa72\n", "\u00a7"),  # non-ASCII delimiter
        (b"1,2\n3,4", ","),  # no final newline
        (b"1,\n", ","),  # empty cell
        (b"1,2\n\n3,4\n", ","),  # blank line
        (b"1, 2\n", ","),  # space
        (b"1,[2]\n", ","),  # simdjson would flatten it into a number
        (b"1,{}\n", ","),
        (b"1,true\n", ","),
        (b"1,null\n", ","),
        (b"1,NA\n", ","),
        (b"1,1.\n", ","),
        (b"1,.5\n", ","),
        (b"1,01\n", ","),
        (b"1,+1\n", ","),
        (b"1,1e400\n", ","),  # float() says inf; JSON's range ends before
        (b"1,Infinity\n", ","),
        (b"1,NaN\n", ","),
        (b"1,-nan\n", ","),
        (b"1,nan5\n", ","),
        (b"1,18446744073709551616\n", ","),  # 2**64
        (b"1,-9223372036854775809\n", ","),
        (b"1\r2,3\n", ","),  # a carriage return inside a cell
    ],
)
def test_refused_bodies(body: bytes, delimiter: str) -> None:
    assert numeric_rows(body, delimiter, 2) is None


def test_bad_widths_and_delimiters_are_refused() -> None:
    assert numeric_rows(b"1\n", ",", 0) is None
    assert numeric_rows(b"1\n", "ab", 1) is None
    assert numeric_rows(b'1"2\n', '"', 2) is None


def test_big_and_tiny_numbers_round_as_float_does() -> None:
    body = (
        b"18446744073709551615,-9223372036854775808\n"
        b"9007199254740993,9007199254740993.000000000000000000001\n"  # a tie, then past it
        b"2.4e-324,2.5e-324\n"
        b"1.7976931348623157e308,-1e-400\n"
        b"0." + b"1" * 800 + b",1e-320\n"
    )
    assert_exact(numeric_rows(body, ",", 2), table_of(body, ","))


def test_a_body_of_many_pieces_is_one_table() -> None:
    body = b"".join(b"%d\t%r\n" % (i, math.sin(i)) for i in range(2000))
    with patch.object(delimited, "_PIECE", 1000):
        assert_exact(numeric_rows(body, "\t", 2), table_of(body, "\t"))


def test_a_line_longer_than_a_piece_is_read() -> None:
    body = b"1,2\n" + b",".join([b"0.125"] * 300) + b"\n3,4\n"
    with patch.object(delimited, "_PIECE", 100):
        assert numeric_rows(body, ",", 2) is None  # the long line is not two cells
        assert_exact(numeric_rows(body[4:-4], ",", 300), table_of(body[4:-4], ","))


def test_a_bad_row_in_a_later_piece_refuses_the_whole_body() -> None:
    body = b"".join(b"%d,1\n" % i for i in range(100)) + b"7,x\n"
    with patch.object(delimited, "_PIECE", 64):
        assert numeric_rows(body, ",", 2) is None


def test_rows_from_an_offset_leave_the_header_out() -> None:
    blob = b"epoch,loss\n0,0.5\n1,nan\n"
    assert_exact(numeric_rows(blob, ",", 2, 11), [[0.0, 0.5], [1.0, math.nan]])
    assert numeric_rows(blob, ",", 2, len(blob)) is None  # no rows
    assert numeric_rows(blob, ",", 2, 0) is None  # the header is no number


@pytest.mark.parametrize("piece", [16, 10_000])
def test_the_first_and_last_cells_of_each_piece_are_cells_like_any(piece: int) -> None:
    """Each piece is framed on its own: a non-finite or -0 cell at either end of it."""
    rows = b"".join(b"%d,0.5\n" % i for i in range(1, 8))
    with patch.object(delimited, "_PIECE", piece):
        for edge in (b"nan,1\n", b"1,-inf\r\n", b"inf,nan\n"):
            body = rows + edge + rows
            assert_exact(numeric_rows(body, ",", 2), table_of(body.replace(b"\r", b""), ","))
        for edge in (b"-0,1\n", b"1,-0\n", b"2,-0\r\n"):
            assert numeric_rows(rows + edge + rows, ",", 2) is None
            assert numeric_rows(edge + rows, ",", 2) is None
            body = edge.replace(b"-0", b"-0.0") + rows  # the same cells as floats are read
            assert_exact(numeric_rows(body, ",", 2), table_of(body.replace(b"\r", b""), ","))


def test_a_delimiter_in_a_one_column_body_is_refused() -> None:
    assert numeric_rows(b"1\n2\t3\n", "\t", 1) is None
    assert numeric_rows(b"1\n2,3\n", ",", 1) is None
    assert_exact(numeric_rows(b"1\n2\n", ",", 1), [[1.0], [2.0]])


@pytest.mark.parametrize("width", [2, 5])
def test_a_later_piece_is_checked_where_it_lies_in_the_body(width: int) -> None:
    """Pieces are searched in place (not copied out): what refuses a body in its first piece
    refuses it in a later one, and a -0 is found in the line it is on."""
    line = b"\t".join([b"0.25"] * (width - 1)) + b"\t%d\n"
    rows = b"".join(line % i for i in range(1, 40))
    with patch.object(delimited, "_PIECE", 200):
        assert_exact(numeric_rows(rows + rows, "\t", width), table_of(rows + rows, "\t"))
        for bad in (b"-0", b"[1]", b"1,5", b"1 "):
            assert numeric_rows(rows + (line % 7).replace(b"7", bad) + rows, "\t", width) is None
        body = rows + (line % 7).replace(b"7", b"-0.0") + rows
        assert_exact(numeric_rows(body, "\t", width), table_of(body, "\t"))


@pytest.mark.parametrize("width", [1, 2, 3])
@pytest.mark.parametrize("block", [64, 128, 192])
def test_a_body_of_many_blocks_is_checked_across_their_edges(width: int, block: int) -> None:
    """numpy checks and frames a narrow body a block at a time: a row cut by a block's edge
    is read, and rows that make up for each other across an edge are refused."""
    line = b";".join([b"0.125"] * (width - 1) + [b"%d"]) + b"\n"
    rows = [line % i for i in range(1, 60)]
    body = b"".join(rows)
    with patch.object(delimited, "_BLOCK", block):
        assert_exact(numeric_rows(body, ";", width), table_of(body, ";"))
        for at in range(1, 20):
            if width == 1:
                bad = [*rows[:at], b"1;2\n", *rows[at:]]
            else:
                short, long = rows[at].replace(b";", b"", 1), rows[at + 1].replace(b";", b";7;")
                bad = [*rows[:at], short, long, *rows[at + 2 :]]
            assert numeric_rows(b"".join(bad), ";", width) is None


@pytest.mark.parametrize("delimiter", ["\t", ",", ";", "|", "~"])
def test_any_delimiter_becomes_a_comma_and_nothing_else_does(delimiter: str) -> None:
    body = "".join(f"{i}{delimiter}{i / 3!r}\n" for i in range(50)).encode()
    assert_exact(numeric_rows(body, delimiter, 2), table_of(body, delimiter))
    # A control byte where a line end or a delimiter should be is no delimiter.
    for stray in (b"\x01", b"\x0b", b"\x0c"):
        assert numeric_rows(body.replace(b"\n", stray, 1), delimiter, 2) is None
        assert numeric_rows(body.replace(delimiter.encode(), stray, 1), delimiter, 2) is None


@pytest.mark.parametrize("piece", range(2, 24))
def test_a_piece_may_end_at_any_comma_and_an_empty_cell_is_still_refused(piece: int) -> None:
    """Pieces of a narrow body end at any comma of the framed text, which is then a bracket
    for a moment: every cell is still read once, and an empty one refuses the body."""
    body = b"1,22\n333,-0.5\n4,5e-3\n6,nan\n7,inf\n"
    with patch.object(delimited, "_PIECE", piece):
        assert_exact(numeric_rows(body, ",", 2), table_of(body, ","))
        for empty in (b"1,22\n,3\n", b"1,22\n3,\n4,5\n", b"1,\n,2\n"):
            assert numeric_rows(empty, ",", 2) is None


def test_a_body_shorter_than_the_kept_buffer_reads_only_itself() -> None:
    """The framing buffer a thread keeps may be longer than the next body (what the last
    one left there is not read), and a body beyond what is kept is read all the same."""
    long = b"".join(b"%d\t%r\n" % (i, math.cos(i)) for i in range(3000))
    assert_exact(numeric_rows(long, "\t", 2), table_of(long, "\t"))
    for short in (b"1\t2\n", b"1\t0\n", b"-0.0\t5\n"):
        assert_exact(numeric_rows(short, "\t", 2), table_of(short, "\t"))
    assert numeric_rows(b"1\t-0\n", "\t", 2) is None
    with patch.object(delimited, "_KEEP", 100):
        assert_exact(numeric_rows(long, "\t", 2), table_of(long, "\t"))
        head = long[: long.index(b"\n", 40) + 1]
        assert_exact(numeric_rows(head, "\t", 2), table_of(head, "\t"))


def test_scratch_tables_are_the_same_numbers_while_their_memory_is_reused() -> None:
    """With ``scratch``, the table may be the thread's kept memory, which the next such
    parse fills: a copy taken before stays exact, and a table too big to keep is its own."""
    small = b"".join(b"%d\t%r\n" % (i, math.sin(i)) for i in range(3000))
    other = b"".join(b"%d\t%r\n" % (i, math.cos(i)) for i in range(2000))
    big = b"".join(b"%d\t%r\n" % (i, i / 7) for i in range(70_000))  # over 1 MiB of table
    first = numeric_rows(small, "\t", 2, scratch=True)
    assert first is not None
    kept = first.copy()
    assert_exact(numeric_rows(other, "\t", 2, scratch=True), table_of(other, "\t"))
    assert_exact(kept, table_of(small, "\t"))
    table = numeric_rows(big, "\t", 2, scratch=True)
    assert_exact(table, table_of(big, "\t"))
    assert_exact(numeric_rows(small, "\t", 2, scratch=True), table_of(small, "\t"))
    assert_exact(table, table_of(big, "\t"))  # not the kept memory: left alone


def test_a_wide_body_whose_lines_shorten_is_read_whole() -> None:
    """A wide body's table is sized from its first piece's bytes per line: shorter lines
    further down need more room, and every row still comes out once, in order."""
    long = [b"%d,%r,%r,%r,%r\r\n" % (i, math.sin(i), math.cos(i), i / 7, -i / 3) for i in range(40)]
    short = [b"%d,1,2,3,%d\r\n" % (i, i % 5) for i in range(40, 400)]
    body = b"".join(long + short)
    with patch.object(delimited, "_PIECE", 512):
        assert_exact(numeric_rows(body, ",", 5), table_of(body.replace(b"\r", b""), ","))
    assert_exact(numeric_rows(body, ",", 5), table_of(body.replace(b"\r", b""), ","))


def test_a_wide_body_table_holds_each_column_in_one_piece_of_memory() -> None:
    """The store reads each column of a CSV whole (extremes, float32): column by column."""
    body = b"".join(b"%d,%r,%r,%r\n" % (i, i / 3, i / 7, i / 9) for i in range(100))
    table = numeric_rows(body, ",", 4)
    assert table is not None and all(table[:, j].flags.c_contiguous for j in range(4))


def test_sentinels_of_a_wide_body_are_counted_over_all_its_pieces() -> None:
    """A non-finite cell in one piece and a cell equal to its sentinel in another: the
    counts of all pieces together tell them apart, as within one piece."""
    rows = [b"%d,0.5,0.25,%d,1\n" % (i, i) for i in range(60)]
    rows[3] = b"3,nan,0.25,3,inf\n"
    rows[50] = b"50,0.5,-inf,50,nan\n"
    body = b"".join(rows)
    with patch.object(delimited, "_PIECE", 200):
        assert_exact(numeric_rows(body, ",", 5), table_of(body, ","))
        for sentinel in (b"5e302", b"4e303", b"3e304"):
            bad = body.replace(b"40,0.5", b"40," + sentinel)
            assert numeric_rows(bad, ",", 5) is None
    unused = (
        body.replace(b"3,nan", b"3,0").replace(b"50,nan", b"50,0").replace(b"40,0.5", b"40,5e302")
    )
    assert_exact(numeric_rows(unused, ",", 5), table_of(unused, ","))


@pytest.mark.parametrize("cell", [b'"7"', b"{}", b"7]", b'"a,b"', b"{7", b"7}"])
def test_quotes_and_braces_refuse_a_wide_body_in_any_piece(cell: bytes) -> None:
    """Quotes, braces and a closing bracket are not searched for: the parse refuses them
    (no JSON, or a string or object where numbers are read)."""
    rows = [b"%d,0.5,0.25,%d,1\n" % (i, i) for i in range(60)]
    rows[45] = b"45,0.5," + cell + b",45,1\n"
    with patch.object(delimited, "_PIECE", 200):
        assert numeric_rows(b"".join(rows), ",", 5) is None
        assert numeric_rows(b"".join(rows), ",", 5 + cell.count(b",")) is None
