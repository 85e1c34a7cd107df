"""The columnar JSON loader fuzzed against Python's json module (hypothesis).

For every document, valid or not, in COCO shape (ground truth, results) and generic JSON:
- where ``json.loads`` of the UTF-8 text accepts it, ``COCO(path)`` / ``loadRes(path)`` give
  the same columns, dicts and errors as the same built from ``json.loads``' result;
- where it rejects it, an AnnotationError (a ValueError) naming the byte offset json names;
- never another exception, never a crash; the C validator (``skip_value``) accepts exactly
  what json accepts (short of NaN/Infinity, which it leaves to json, and depth > 256).

Documents are built as bytes from pieces that hit the scanner's corners (numbers with many
digits, huge exponents, -0, escapes, surrogate pairs and lone surrogates, raw UTF-8 and broken
UTF-8, escaped and duplicate keys), then maybe broken (truncated, a byte inserted, deleted or
replaced, trailing garbage, a BOM). ``FASTIOU_FUZZ_EXAMPLES`` raises the example counts.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastiou.coco import COCO, AnnotationError, _ckernels, _json

SCALE = int(os.environ.get("FASTIOU_FUZZ_EXAMPLES", "1"))
FUZZ = settings(
    max_examples=80 * SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TABLE_FIELDS = ("id", "image_id", "category_id", "bbox", "area", "iscrowd", "ignore", "score")

# -- pieces of JSON text ----------------------------------------------------------------------

WS = st.sampled_from([b"", b"", b" ", b"\n", b"\t", b"\r\n", b"  "])
DIGITS = st.text("0123456789", min_size=1, max_size=25).map(str.encode)


SPECIAL_NUMBERS = [
    b"-0", b"0", b"-0.0", b"1" + b"0" * 400, b"9" * 30, str(2**63).encode(),
    str(2**64 + 1).encode(), b"-" + b"9" * 19, b"NaN", b"Infinity", b"-Infinity",
]  # fmt: skip


@st.composite
def number_text(draw) -> bytes:
    """A JSON number: as writers print them (repr of float64 and float32 values, integers),
    special ones (-0, beyond int64, beyond float, Python's NaN and Infinity) and digit strings
    of any length with any exponent."""
    kind = draw(st.integers(0, 40))
    if kind <= 2 or kind > 9:
        width = draw(st.sampled_from([32, 64]))
        return repr(draw(st.floats(allow_nan=False, allow_infinity=False, width=width))).encode()
    if kind == 3:
        return str(draw(st.integers(-(10**6), 10**6))).encode()
    if kind <= 5:
        return draw(st.sampled_from(SPECIAL_NUMBERS))
    sign = draw(st.sampled_from([b"", b"", b"-"]))
    whole = draw(st.one_of(st.just(b"0"), DIGITS.map(lambda d: d.lstrip(b"0") or b"7")))
    frac = draw(st.one_of(st.just(b""), DIGITS.map(lambda d: b"." + d)))
    exp = b""
    if draw(st.booleans()):
        e = draw(st.one_of(st.integers(0, 400), st.integers(0, 10**12)))
        exp = (
            draw(st.sampled_from([b"e", b"E"]))
            + draw(st.sampled_from([b"", b"+", b"-"]))
            + str(e).encode()
        )
    return sign + whole + frac + exp


# Characters of a string, as JSON text: raw (UTF-8), escapes, \u escapes (lone surrogates,
# pairs, reversed pairs), and pieces json rejects (raw control characters, bad escapes,
# broken UTF-8).
_HEX4 = st.integers(0, 0xFFFF).map(lambda u: f"\\u{u:04x}".encode())
_PAIR = st.tuples(st.integers(0xD800, 0xDBFF), st.integers(0xDC00, 0xDFFF)).map(
    lambda hl: f"\\u{hl[0]:04X}\\u{hl[1]:04x}".encode()
)
_RAW = st.characters(blacklist_categories=("Cs",), blacklist_characters='"\\').map(
    lambda c: c.encode()
)
_GOOD = st.one_of(
    _RAW,
    _RAW,
    st.sampled_from([b"\\n", b'\\"', b"\\\\", b"\\/", b"\\b", b"\\f", b"\\r", b"\\t", b"\x7f"]),
    _HEX4,
    _PAIR,
    _PAIR.map(lambda p: p[6:] + p[:6]),  # low surrogate first: two lone surrogates
    st.sampled_from(["é", "€", "𝄞", "\u2028", "\ufeff"]).map(str.encode),
)
_BAD = st.one_of(
    st.integers(0, 0x1F).map(lambda c: bytes([c])),  # raw control characters
    st.sampled_from([
        b"\\x41", b"\\u12", b"\\u12g4", b"\\U0041", b"\\", b"\\'", b"\\a", b"\\0",
        b"\xff", b"\x80", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xed\xa0\x80",
        b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xe2\x82", b"\xf0\x9f\x98",
        b"\xe2\x28\xa1",
    ]),
)  # fmt: skip


def string_text() -> st.SearchStrategy[bytes]:
    return st.lists(_GOOD, max_size=8).map(lambda parts: b'"' + b"".join(parts) + b'"')


def _array(items: list[bytes], ws: bytes = b"") -> bytes:
    return b"[" + ws + (b"," + ws).join(items) + ws + b"]"


def _object(pairs: list[tuple[bytes, bytes]], ws: bytes = b"") -> bytes:
    inner = (b"," + ws).join(k + ws + b":" + ws + v for k, v in pairs)
    return b"{" + ws + inner + ws + b"}"


LITERAL = st.sampled_from([b"true", b"false", b"null"])


def _containers(children):
    return st.one_of(
        st.tuples(st.lists(children, max_size=4), WS).map(lambda t: _array(*t)),
        st.tuples(st.lists(st.tuples(string_text(), children), max_size=4), WS).map(
            lambda t: _object(*t)
        ),
    )


JSON_VALUE = st.recursive(
    st.one_of(number_text(), string_text(), LITERAL), _containers, max_leaves=12
)


@st.composite
def nested(draw) -> bytes:
    """A value inside many arrays / objects (around the scanner's 256-level limit)."""
    depth = draw(st.sampled_from([1, 10, 255, 256, 257, 300]))
    value = draw(JSON_VALUE)
    opens = draw(st.lists(st.booleans(), min_size=depth, max_size=depth))
    head = b"".join(b'{"k":' if o else b"[" for o in opens)
    tail = b"".join(b"}" if o else b"]" for o in reversed(opens))
    return head + value + tail


# -- COCO-shaped documents --------------------------------------------------------------------

IMAGE_IDS = (1, 2, 3, 5, 8)


def _key(name: str):
    """A key as written, sometimes escaped (the scanner leaves escaped keys to json)."""
    plain = b'"' + name.encode() + b'"'
    escaped = b'"\\u' + f"{ord(name[0]):04x}".encode() + name[1:].encode() + b'"'
    return st.sampled_from([plain, plain, plain, plain, escaped])


@st.composite
def id_text(draw, pool=IMAGE_IDS) -> bytes:
    kind = draw(st.integers(0, 40))
    if kind == 0:
        return draw(st.sampled_from([b"1.0", b"-0", b"2e0", b"1.5", b'"1"', b"true", b"null"]))
    if kind == 1:
        return draw(number_text())
    if kind == 2:
        return str(draw(st.integers(10**17, 10**20))).encode()
    return str(draw(st.sampled_from(pool))).encode()


# iscrowd / ignore as written (true / false: pycocotools tests them for truth), and not
FLAG_TEXT = st.sampled_from(
    [b"0", b"1", b"0", b"true", b"false", b"0.0", b"2", b"null", b"1e300", b"0.5"]
)
NOT_A_BOX = [b"[]", b"[1,2,3]", b"[1,2,3,4,5]", b'"box"', b"null", b"[[1],2,3,4]", b"[1,2,3,true]"]


@st.composite
def box_text(draw) -> bytes:
    if draw(st.integers(0, 15)) == 0:
        return draw(st.sampled_from(NOT_A_BOX))
    ws = draw(WS)
    return _array([draw(number_text()) for _ in range(4)], ws)


@st.composite
def annotation_text(draw, results: bool) -> bytes:
    values = {
        "image_id": id_text(),
        "category_id": id_text((1, 2, 4)),
        "bbox": box_text(),
        "score" if results else "area": number_text(),
    }
    if not results:
        values["id"] = st.integers(0, 40).map(lambda i: str(i).encode()) | id_text(range(40))
        values["iscrowd"] = values["ignore"] = FLAG_TEXT
    pairs = []
    for name, strategy in values.items():
        if draw(st.integers(0, 30)) == 0 or (name == "ignore" and draw(st.booleans())):
            continue  # missing (ignore: often absent, as in COCO files)
        pairs.append((draw(_key(name)), draw(strategy)))
    for _ in range(draw(st.integers(0, 2))):  # extras: segmentations, captions, anything
        key = draw(st.one_of(st.just(b'"segmentation"'), string_text()))
        pairs.append((key, draw(JSON_VALUE)))
    if pairs and draw(st.integers(0, 8)) == 0:  # a duplicate key: json keeps the last value
        k, _ = draw(st.sampled_from(pairs))
        pairs.append((k, draw(st.sampled_from([v for _, v in pairs]))))
    pairs = draw(st.permutations(pairs))
    return _object(pairs, draw(WS))


@st.composite
def dataset_text(draw) -> bytes:
    ws = draw(WS)
    images = _array(
        [
            _object([(b'"id"', str(i).encode()), (b'"file_name"', draw(string_text()))])
            for i in IMAGE_IDS
        ],
        ws,
    )
    categories = _array(
        [
            _object([(b'"id"', str(c).encode()), (b'"name"', draw(string_text()))])
            for c in (1, 2, 4)
        ],
        ws,
    )
    annotations = _array(draw(st.lists(annotation_text(False), max_size=6)), draw(WS))
    pairs = [(b'"images"', images), (b'"categories"', categories), (b'"annotations"', annotations)]
    if draw(st.booleans()):
        pairs.append((b'"info"', draw(JSON_VALUE)))
    if draw(st.integers(0, 6)) == 0:  # "annotations" twice (the second may be anything)
        pairs.append((b'"annotations"', draw(st.one_of(JSON_VALUE, st.just(annotations)))))
    if draw(st.integers(0, 10)) == 0:
        pairs.append((b'"annotations"', b"null"))
    return _object(draw(st.permutations(pairs)), ws)


@st.composite
def results_text(draw) -> bytes:
    return _array(draw(st.lists(annotation_text(True), max_size=8)), draw(WS))


_NOISE = st.one_of(
    _BAD,
    st.sampled_from([
        b"", b" ", b'"', b"{", b"}", b"[", b"]", b",", b":", b"0", b"-", b"e", b".", b"x", b"01",
        b"1.", b".5", b"+1", b"1e", b"1e+", b"0x10", b"--1", b"nan", b"tru", b"\xef\xbb\xbf",
    ]),
)  # fmt: skip


@st.composite
def broken(draw, document) -> bytes:
    """The document, or (most of the time) a copy with one defect."""
    data = draw(document)
    how = draw(st.integers(0, 13))
    if how <= 3 or not data:
        return data
    at = draw(st.integers(0, len(data)))
    if how <= 5:  # a defect inside a string (or just after one), where the scanner skips
        quotes = [i for i, c in enumerate(data) if c == ord('"')]
        at = draw(st.sampled_from(quotes)) + 1 if quotes else at
        return data[:at] + draw(_BAD) + data[at:]
    if how == 6:
        return data[:at]  # truncated
    if how <= 8:
        return data[:at] + draw(_NOISE) + data[at:]
    if how == 9:
        return data[:at] + data[at + 1 :]
    if how <= 11:
        return data[:at] + draw(_NOISE) + data[at + 1 :]
    if how == 12:
        return data + draw(st.sampled_from([b"x", b",", b"]", b"}", b"{}", b" 1", b"\x00", b" \n"]))
    return b"\xef\xbb\xbf" + data  # a UTF-8 byte order mark


# -- the oracle -------------------------------------------------------------------------------


def _same(a, b) -> bool:
    """Equal values of the same types; floats by their bits (-0.0 is not 0.0, NaN is NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    return a == b


def _json_reference(data: bytes):
    """(value, None) as json reads the UTF-8 text, or (None, the byte offset json names; -1 for
    nesting too deep)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, e.start
    try:
        return json.loads(text), None
    except json.JSONDecodeError as e:
        return None, len(text[: e.pos].encode("utf-8", "surrogatepass"))
    except RecursionError:
        return None, -1


def _outcome(call):
    """("ok", value) or ("error", exception type, message); AnnotationError and the errors a
    malformed dataset gives pycocotools too (TypeError, KeyError) are outcomes, anything else
    a failure of the test."""
    try:
        return ("ok", call())
    except (AnnotationError, TypeError, KeyError) as e:
        return ("error", type(e), str(e))


def _columns(coco: COCO) -> dict:
    t = coco._table()
    return {f: getattr(t, f) for f in TABLE_FIELDS}


def _gt_view(coco: COCO, dataset: bool) -> dict:
    """What a loaded dataset gives: its columns, dicts and (when asked) its ``dataset``."""
    view = {"columns": _columns(coco), "imgs": coco.imgs, "cats": coco.cats}
    return {**view, "dataset": coco.dataset} if dataset else view


def _assert_same_columns(ours: dict, ref: dict) -> None:
    for f in TABLE_FIELDS:
        a, b = ours[f], ref[f]
        if b is None:
            assert a is None, f
            continue
        assert a.dtype == b.dtype and a.shape == b.shape, (f, a.dtype, b.dtype, a.shape, b.shape)
        assert a.tobytes() == b.tobytes(), (f, a, b)


def _assert_same_outcome(ours, ref, data: bytes) -> None:
    if ref[0] == "error":
        assert ours[0] == "error", (data, ref)
        assert ours[1] is ref[1] or issubclass(ours[1], AnnotationError), (data, ours, ref)
        return
    assert ours[0] == "ok", (data, ours)
    for key in ours[1]:
        if key == "columns":
            _assert_same_columns(ours[1][key], ref[1][key])
        else:
            assert _same(ours[1][key], ref[1][key]), (key, data)


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory(prefix="fastiou_fuzz_") as directory:
        yield directory


GROUND_TRUTH = {
    "images": [{"id": i} for i in IMAGE_IDS],
    "categories": [{"id": c} for c in (1, 2, 4)],
    "annotations": [],
}


def _check_file(path: str, data: bytes, load_path, load_value, decoder: str = "msgspec") -> None:
    """Write ``data`` to ``path``; compare loading it with loading ``json.loads`` of it."""
    with open(path, "wb") as f:
        f.write(data)
    if decoder == "msgspec" and _json._msgspec_decode() is None:
        pytest.skip("msgspec is not installed (pip install msgspec)")
    if decoder == "json":  # the loader without msgspec (an optional dependency)
        with mock.patch.object(_json, "_msgspec_decode", lambda: None):
            return _check_written(path, data, load_path, load_value)
    return _check_written(path, data, load_path, load_value)


def _check_written(path: str, data: bytes, load_path, load_value) -> None:
    value, bad_at = _json_reference(data)
    if bad_at is not None:  # json rejects the file: so does loading it, naming where
        ours = _outcome(lambda: load_path(path, False))
        assert ours[0] == "error" and ours[1] is AnnotationError, (data, ours)
        if bad_at >= 0:
            assert f"byte {bad_at}" in ours[2], (data, ours[2])
        return
    ours = _outcome(lambda: load_path(path, True))
    _assert_same_outcome(ours, _outcome(lambda: load_value(value)), data)


@pytest.mark.parametrize("decoder", ["msgspec", "json"])
@FUZZ
@given(broken(dataset_text()))
def test_ground_truth_files_as_json(scratch, decoder, data):
    _check_file(
        os.path.join(scratch, "gt.json"), data,
        lambda path, full: _gt_view(COCO(path, verbose=False), full),
        lambda value: _gt_view(COCO(value, verbose=False), True), decoder,
    )  # fmt: skip


@pytest.mark.parametrize("decoder", ["msgspec", "json"])
@FUZZ
@given(broken(results_text()))
def test_result_files_as_json(scratch, decoder, data):
    gt = COCO(GROUND_TRUTH, verbose=False)
    _check_file(
        os.path.join(scratch, "dt.json"), data,
        lambda path, full: {"columns": _columns(gt.loadRes(path))},
        lambda value: {"columns": _columns(gt.loadRes(value))}, decoder,
    )  # fmt: skip


@FUZZ
@given(broken(st.one_of(JSON_VALUE, nested())))
def test_generic_json_files(scratch, data):
    """Any JSON as a dataset and as a results file: errors where json fails, never a crash."""
    gt = COCO(GROUND_TRUTH, verbose=False)
    path = os.path.join(scratch, "any.json")
    _check_file(path, data, _gt_from_path, _gt_from_value)
    _check_file(path, data, lambda p, _: {"columns": _columns(gt.loadRes(p))}, _results_from(gt))


def _gt_from_path(path: str, full: bool) -> dict:
    return _gt_view(COCO(path, verbose=False), full)


def _gt_from_value(value) -> dict:
    return (
        _gt_view(COCO(value, verbose=False), True)
        if isinstance(value, dict)
        else _not_object(value)
    )


def _results_from(gt: COCO):
    def load(value) -> dict:
        return (
            {"columns": _columns(gt.loadRes(value))}
            if isinstance(value, list)
            else _not_list(value)
        )

    return load


def _not_object(value):
    raise AnnotationError(f"a dataset must be an object, not {type(value).__name__}")


def _not_list(value):
    raise AnnotationError(f"results must be a list, not {type(value).__name__}")


def _has_python_extension(data: bytes) -> bool:
    return any(w in data for w in (b"NaN", b"Infinity"))


@FUZZ
@given(broken(st.one_of(JSON_VALUE, nested(), dataset_text(), results_text())))
def test_validator_accepts_what_json_accepts(data):
    """skip_value spans exactly one value where json reads the text, and declines otherwise."""
    if not data:
        return
    buf = np.frombuffer(data, np.uint8)
    end = _ckernels.skip_value(buf, 0)
    accepted = end >= 0 and _ckernels.skip_ws(buf, end) == len(data)
    value, bad_at = _json_reference(data)
    if accepted:
        assert bad_at is None, data  # never accepts what json rejects
    elif bad_at is None and not _has_python_extension(data):
        assert data.count(b"[") + data.count(b"{") >= 256, data  # declines deep nesting only


# -- what the fuzzing found, as fixed cases ----------------------------------------------------

RESULT = b'{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5'


def _at(data: bytes, marker: bytes) -> tuple[bytes, int]:
    return data, data.index(marker)


@pytest.mark.parametrize(
    "data, byte",
    [
        _at(b"[" + RESULT + b', "\x01x": 0}]', b"\x01"),  # a raw control character in a key
        _at(b"[" + RESULT + b', "caption": "\xff"}]', b"\xff"),  # not UTF-8, in a skipped value
        _at(b"[" + RESULT + b', "caption": "\xed\xa0\x80"}]', b"\xed"),  # an encoded surrogate
        _at(b"[" + RESULT + b', "caption": "\xc0\x80"}]', b"\xc0"),  # an overlong NUL
        _at(b"[" + RESULT + b', "caption": "\xe2\x82"}]', b"\xe2"),  # a truncated character
        _at(b"[" + RESULT + b', "caption": "\\x41"}]', b"\\"),  # an escape json does not know
        _at(b"[" + RESULT + b', "caption": "\xc3\xa9\xe2\x82\xac\x02"}]', b"\x02"),  # after é€
        (b"\xef\xbb\xbf[" + RESULT + b"}]", 0),  # a byte order mark, as json.load rejects it
        (b"[" + RESULT + b"}] x", len(RESULT) + 4),  # trailing garbage
        (b"[" + RESULT, len(RESULT) + 1),  # truncated
    ],
)
def test_invalid_results_file_names_the_byte(scratch, data, byte):
    path = os.path.join(scratch, "bad.json")
    with open(path, "wb") as f:
        f.write(data)
    assert _json_reference(data)[1] == byte  # the oracle agrees on where
    with pytest.raises(AnnotationError, match=f"byte {byte}\\b"):
        COCO(GROUND_TRUTH, verbose=False).loadRes(path)


def test_invalid_ground_truth_key_is_rejected(scratch):
    path = os.path.join(scratch, "bad_gt.json")
    with open(path, "wb") as f:
        f.write(b'{"images": [{"id": 1}], "\xffinfo": {}, "annotations": []}')
    with pytest.raises(AnnotationError, match="byte 25"):
        COCO(path, verbose=False)


def test_minus_zero_is_json_s_integer_zero(scratch):
    path = os.path.join(scratch, "zero.json")
    with open(path, "wb") as f:
        f.write(b"[" + RESULT.replace(b"[1, 2, 3, 4]", b"[-0, -0.0, -0e3, 4]") + b"}]")
    bbox = COCO(GROUND_TRUTH, verbose=False).loadRes(path)._table().bbox[0]
    assert [math.copysign(1, v) for v in bbox[:3]] == [1, -1, -1]


def test_nesting_beyond_the_recursion_limit(scratch):
    path = os.path.join(scratch, "deep.json")
    with open(path, "wb") as f:
        f.write(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(AnnotationError, match="nested too deeply"):
        COCO(GROUND_TRUTH, verbose=False).loadRes(path)


@FUZZ
@given(st.lists(broken(annotation_text(True)), min_size=1, max_size=12), st.integers(1, 3))
def test_chunked_scan_is_the_one_chunk_scan(objects, threads):
    """Split at guessed object boundaries (small chunks, several threads), the scanner accepts
    what it accepts in one piece, and reads the same columns; all of it valid JSON."""
    data = _array(objects, b" ")
    buf = np.frombuffer(data, np.uint8)

    def scan(threads: int, chunk: int):
        return _ckernels.parse_object_array(
            buf, 0, _json.pow5_table(), _json.MIN_RESULT_BYTES, threads, min_chunk_bytes=chunk
        )

    whole, chunked = scan(1, 1 << 20), scan(threads, 48)
    assert (whole is None) == (chunked is None), data
    if whole is None:
        return
    assert whole[1] == chunked[1]
    if _ckernels.skip_ws(buf, whole[1]) == len(data):  # the array is all: json reads it too
        assert _json_reference(data)[1] is None, data
    seen = whole[0]["seen"]
    assert np.array_equal(seen, chunked[0]["seen"])
    for key, column in whole[0].items():
        if key != "seen":  # rows without the key hold whatever memory held: not compared
            present = (seen & (1 << _ckernels.KEYS.index(key))) != 0
            assert column[present].tobytes() == chunked[0][key][present].tobytes(), key
