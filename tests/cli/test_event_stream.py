"""Parsing a text/event-stream body into events."""

from __future__ import annotations

from backend.cli.event_stream import ServerSentEvent, read_events


def test_events_are_split_on_blank_lines_with_their_kind_and_data() -> None:
    lines = ["event: state", 'data: {"a": 1}', "", "event: progress", 'data: {"a": 2}', ""]
    assert list(read_events(lines)) == [
        ServerSentEvent("state", '{"a": 1}'),
        ServerSentEvent("progress", '{"a": 2}'),
    ]


def test_heartbeat_comments_and_unknown_fields_are_ignored() -> None:
    lines = [": heartbeat", "", "id: 7", "retry: 1000", "data:x", "", ": heartbeat", ""]
    assert list(read_events(lines)) == [ServerSentEvent("message", "x")]


def test_several_data_lines_join_with_newlines() -> None:
    assert list(read_events(["data: one", "data: two", ""])) == [ServerSentEvent("message", "one\ntwo")]


def test_an_event_cut_off_before_its_blank_line_is_not_delivered() -> None:
    assert list(read_events(["event: state", "data: complete", "", "event: progress", "data: {"])) == [
        ServerSentEvent("state", "complete")
    ]


def test_the_kind_does_not_leak_into_the_next_event() -> None:
    events = list(read_events(["event: status", "data: a", "", "data: b", ""]))
    assert [e.kind for e in events] == ["status", "message"]
