"""A program's output: lines split from raw chunks whatever the bytes, metrics read, rows merged per step."""

from __future__ import annotations

import random

import pytest

from shared.trainkit.workloads.command.output import (
    MAX_LINE_CHARS,
    MetricHistory,
    MetricParser,
    split_lines,
)
from shared.trainkit.workloads.command.template import DEFAULT_METRICS


@pytest.fixture
def parser() -> MetricParser:
    return MetricParser(DEFAULT_METRICS)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("step: 100 loss: 0.5432 lr: 0.01", {"step": 100.0, "loss": 0.5432, "lr": 0.01}),
        ("step=7 loss=1e-3 lr=3.0e-4", {"step": 7.0, "loss": 0.001, "lr": 0.0003}),
        ("Step 12 | loss 2.5", {"loss": 2.5}),  # the seed's step regex is case-sensitive
        ("step: 3 val_loss: 0.25", {"step": 3.0, "val_loss": 0.25}),
        ("step: 3 val loss: 0.25 loss: 0.75", {"step": 3.0, "val_loss": 0.25, "loss": 0.75}),
        ("step: 4 loss: nan", {"step": 4.0}),
        ("epoch 1 done", {}),
    ],
)
def test_seed_004_lines_give_exact_values(
    parser: MetricParser, line: str, expected: dict[str, float]
) -> None:
    parsed = parser.parse(line)
    assert {k: v for k, v in parsed.items() if v == v} == expected  # nan != nan: compared apart


def test_a_nan_loss_is_read_as_nan(parser: MetricParser) -> None:
    value = parser.parse("step: 4 loss: nan")["loss"]
    assert value != value


def test_val_loss_is_never_mistaken_for_loss(parser: MetricParser) -> None:
    assert parser.parse("val_loss: 0.3") == {"val_loss": 0.3}
    assert parser.parse("step: 9 val_loss=0.125") == {"step": 9.0, "val_loss": 0.125}


def test_a_structured_line_wins_over_the_regexes(parser: MetricParser) -> None:
    line = 'MODELYARD {"step": 5, "val_loss": 0.2, "device": "cpu", "note": "loss: 9"}'
    assert parser.parse(line) == {"step": 5, "val_loss": 0.2, "device": "cpu"}
    assert parser.parse('  MODELYARD {"loss": 1.5, "flag": true, "nested": {"a": 1}}') == {"loss": 1.5}


@pytest.mark.parametrize("tail", ['{"step": 5,', "[1, 2]", "not json step: 6 loss: 0.5"])
def test_an_invalid_structured_line_falls_back_to_the_regexes(parser: MetricParser, tail: str) -> None:
    parsed = parser.parse(f"MODELYARD {tail} step: 6 loss: 0.5")
    assert parsed == {"step": 6.0, "loss": 0.5}


def test_binary_garbage_never_raises_and_becomes_visible_marks(parser: MetricParser) -> None:
    rng = random.Random(4)
    pending = b""
    lines: list[str] = []
    for _ in range(200):
        chunk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600)))
        got, pending = split_lines(pending, chunk)
        lines.extend(got)
    lines.extend(split_lines(pending, b"\x00\xff\xfe step: 1 loss: 2", final=True)[0])
    for line in lines:
        parser.parse(line)
        assert "\x00" not in line
        assert all(ord(c) >= 0x20 or c == "\t" for c in line)
    assert parser.parse(lines[-1]) == {"step": 1.0, "loss": 2.0}
    assert "\ufffd" in lines[-1]


def test_carriage_return_progress_bars_split_into_lines() -> None:
    lines, rest = split_lines(b"", b"  10%|#    |\r  50%|#####|\r 100%|######|\nstep: 1 loss: 2\r\npart")
    assert lines == ["  10%|#    |", "  50%|#####|", " 100%|######|", "step: 1 loss: 2"]
    assert rest == b"part"


def test_a_line_split_across_chunks_is_joined() -> None:
    first, rest = split_lines(b"", b"step: 1 lo")
    second, rest = split_lines(rest, b"ss: 0.5\n")
    assert (first, second, rest) == ([], ["step: 1 loss: 0.5"], b"")


def test_a_multibyte_character_split_across_chunks_survives() -> None:
    text = "schritt ü loss: 1\n".encode()
    cut = text.index("ü".encode()) + 1
    first, rest = split_lines(b"", text[:cut])
    lines, _ = split_lines(rest, text[cut:])
    assert (first, lines) == ([], ["schritt ü loss: 1"])


def test_a_one_megabyte_line_without_newline_is_cut_and_memory_stays_bounded() -> None:
    pending = b""
    lines: list[str] = []
    for _ in range(16):
        got, pending = split_lines(pending, b"x" * (1 << 16))
        lines.extend(got)
        assert len(pending) <= 4 * MAX_LINE_CHARS + (1 << 16)
    lines.extend(split_lines(pending, b"", final=True)[0])
    assert lines
    assert all(len(line) <= MAX_LINE_CHARS for line in lines)


def test_rows_merge_per_step_and_a_line_without_step_joins_the_last_step() -> None:
    history = MetricHistory()
    for values in (
        {"device": "cpu"},  # before any step: a last value, not a row
        {"step": 10, "loss": 0.9, "lr": 0.1},
        {"val_loss": 0.8},
        {"step": 10, "val_accuracy": 0.5},
        {"step": 20, "loss": 0.7},
        {"step": 30},  # a step with no metric of its own: no row
        {"step": 40, "loss": 0.5, "val_loss": 0.6},
    ):
        history.add(values)
    assert history.drain(final=True) == [
        {"step": 10, "loss": 0.9, "lr": 0.1, "val_loss": 0.8, "val_accuracy": 0.5},
        {"step": 20, "loss": 0.7},
        {"step": 40, "loss": 0.5, "val_loss": 0.6},
    ]
    assert history.best_val_loss == 0.6
    assert history.step == 40
    assert history.numeric_last() == {"loss": 0.5, "lr": 0.1, "val_loss": 0.6, "val_accuracy": 0.5}
    assert history.last["device"] == "cpu"


def test_drain_hands_out_each_finished_row_once() -> None:
    history = MetricHistory()
    history.add({"step": 1, "loss": 1.0})
    history.add({"step": 2, "loss": 0.5})
    assert history.drain() == [{"step": 1, "loss": 1.0}]
    assert history.drain() == []
    assert history.drain(final=True) == [{"step": 2, "loss": 0.5}]


def test_thinning_keeps_the_newest_row_and_never_more_than_max_rows() -> None:
    history = MetricHistory(max_rows=100)
    for step in range(1, 5001):
        history.add({"step": step, "loss": 1 / step})
        assert len(history.rows) <= 100
    history.drain(final=True)
    assert history.rows[-1] == {"step": 5000, "loss": 1 / 5000}
    assert history.rows[0]["step"] == 1
    steps = [row["step"] for row in history.rows]
    assert steps == sorted(steps)
    assert len(history.rows) >= 50


#: The seed's patterns as first written (look-behinds in front): the reordered defaults must agree.
SEED_FORM = {
    "loss": r"(?<![\w])(?<!val\s)loss[:\s=]+([-+0-9.eE]+|nan|inf)",
    "step": r"step[:\s=]+(\d+)",
    "lr": r"(?<![\w])lr[:\s=]+([-+0-9.eE]+)",
    "val_loss": r"val[_\s]loss[:\s=]+([-+0-9.eE]+|nan|inf)",
}
TOKENS = [
    "loss",
    "val",
    "_",
    " ",
    "lr",
    "step",
    ":",
    "=",
    "0.5",
    "1e-3",
    "nan",
    "x",
    "\t",
    "3",
    "-",
    "e",
    ".",
]


def random_lines(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 14))) for _ in range(count)]


def test_the_reordered_default_patterns_read_what_the_seeds_patterns_read(parser: MetricParser) -> None:
    seed = MetricParser(SEED_FORM)
    for line in random_lines(20_000):
        assert repr(parser.parse(line)) == repr(seed.parse(line)), line  # repr: nan equals nan


@pytest.mark.parametrize(
    ("patterns", "scans_chunks"),
    [
        (DEFAULT_METRICS, True),  # line-safe (a "." inside a class is literal): one scan over the chunk
        ({"loss": r"loss[=:](\d+)", "acc": r"acc[.](\d)"}, True),
        ({"loss": r"^.*loss (\S+)", "acc": r"acc=(\d\.\d+)$"}, False),  # anchors and dots: line by line
        ({"loss": r"loss[^x](\d+)"}, False),  # a negated class matches the separator
    ],
)
def test_a_chunk_reads_exactly_what_its_lines_read_one_by_one(
    patterns: dict[str, str], scans_chunks: bool
) -> None:
    lines = [*random_lines(5_000), "loss 0.5", "acc=0.75", "x acc=0.5 y", "val", "loss: 2", "lossy7"]
    parser = MetricParser(patterns)
    assert parser.scans_chunks is scans_chunks
    one_by_one = [values for values in map(parser.parse, lines) if values]
    chunked = [
        row for start in range(0, len(lines), 333) for row in parser.parse_many(lines[start : start + 333])
    ]
    assert repr(chunked) == repr(one_by_one)


def test_a_metric_never_spans_two_lines_of_a_chunk(parser: MetricParser) -> None:
    assert parser.parse_many(["epoch done, val", "loss: 0.5", "step:", "4 lr: 0.1"]) == [
        {"loss": 0.5},
        {"lr": 0.1},
    ]


def test_a_structured_line_in_a_chunk_still_wins(parser: MetricParser) -> None:
    rows = parser.parse_many(
        ["step: 1 loss: 0.5", '  MODELYARD {"step": 2, "val_loss": 0.25, "note": "loss: 9"}']
    )
    assert rows == [{"step": 1.0, "loss": 0.5}, {"step": 2, "val_loss": 0.25}]


def test_adding_rows_in_bulk_equals_adding_them_one_by_one(parser: MetricParser) -> None:
    rows = [values for values in map(parser.parse, random_lines(5_000, seed=3)) if values]
    one, bulk = MetricHistory(), MetricHistory()
    for values in rows:
        one.add(values)
    for start in range(0, len(rows), 97):
        bulk.add_many(rows[start : start + 97])
    assert repr(one.drain(final=True)) == repr(bulk.drain(final=True))
    assert (one.last.keys(), one.best_val_loss, one.lines_with_metrics) == (
        bulk.last.keys(),
        bulk.best_val_loss,
        bulk.lines_with_metrics,
    )


def test_a_checkpoint_line_is_handed_on_not_read_as_metrics(parser: MetricParser) -> None:
    lines = [
        "step: 410 loss: 0.5",
        'MODELYARD {"checkpoint": "ckpt/last.pt", "step": 400}',
        'MODELYARD {"checkpoint": "last.pt", "step": 800.0}',
    ]
    assert parser.parse_many(lines) == [{"step": 410.0, "loss": 0.5}]
    assert parser.new_checkpoint_lines == 2
    assert parser.take_checkpoints() == [("ckpt/last.pt", 400), ("last.pt", 800)]
    assert parser.take_checkpoints() == []
    assert parser.new_checkpoint_lines == 0


@pytest.mark.parametrize(
    "body",
    [
        '{"checkpoint": "last.pt"}',
        '{"checkpoint": "last.pt", "step": -1}',
        '{"checkpoint": "last.pt", "step": 1.5}',
        '{"checkpoint": "last.pt", "step": true}',
        '{"checkpoint": 3, "step": 1}',
        '{"checkpoint": "", "step": 1}',
    ],
)
def test_a_checkpoint_line_without_a_path_and_a_step_is_counted_bad(parser: MetricParser, body: str) -> None:
    assert parser.parse("MODELYARD " + body) == {}
    assert parser.take_checkpoints() == []
    assert parser.bad_checkpoint_lines == 1
