"""bench.fanout_client: the light websocket client bench.fanout measures the fan-out with."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import struct
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from bench import fanout_client
from bench.fanout_client import LightSocket, client_frame, frame_at, sequence_in


def server_frame(opcode: Opcode, payload: bytes) -> bytes:
    """What a server writes: websockets' own framing, unmasked."""
    return Frame(opcode, payload).serialize(mask=False, extensions=())


def test_frame_boundaries_of_each_length_encoding() -> None:
    small, medium, large = b"x" * 5, b"y" * 300, b"z" * 70_000
    data = b"".join(server_frame(Opcode.TEXT, p) for p in (small, medium, large))
    first = frame_at(data, 0)
    assert first == (1, 2, 7, 7)
    second = frame_at(data, 7)
    assert second == (1, 11, 311, 311)
    third = frame_at(data, 311)
    assert third == (1, 321, 70_321, 70_321)
    assert len(data) == 70_321
    # Incomplete: the header or the payload not all here yet.
    assert frame_at(data[:1], 0) is None
    assert frame_at(data[:9], 7) is None
    assert frame_at(data[:70_320], 311) is None


def test_a_masked_server_frame_is_refused() -> None:
    with pytest.raises(ValueError):
        frame_at(client_frame(1, b"hi"), 0)


def test_client_frames_are_masked_with_a_zero_key() -> None:
    frame = client_frame(1, b"hello")
    assert frame == b"\x81\x85\x00\x00\x00\x00hello"
    assert client_frame(1, b"a" * 200)[:4] == b"\x81\xfe\x00\xc8"
    assert client_frame(1, b"a" * 70_000)[:10] == b"\x81\xff" + struct.pack("!Q", 70_000)


def test_the_sequence_is_read_from_the_bytes() -> None:
    body = 'a quoted "sequence":99 in a string is not the key'
    text = json.dumps(
        {"id": "1", "type": "next", "payload": {"data": {"commentAdded": {"body": body}}}},
        separators=(",", ":"),
    )
    data = text.encode()
    assert sequence_in(data, 0, len(data)) is None
    text = '{"id":"1","type":"next","payload":{"data":{"commentAdded":{"sequence":1234,"x":1}}}}'
    data = b"junk" + text.encode() + b"junk"
    assert sequence_in(data, 4, 4 + len(text)) == 1234
    # Outside the range given: not found.
    assert sequence_in(data, 4, 60) is None


async def test_handshake_messages_and_deliveries_against_a_websockets_server() -> None:
    """The light client against a real server: the upgrade, the subprotocol, masked frames the
    server reads, then ``next`` frames counted with their marks (the comment's sequence without
    parsing, odds' through JSON), a ping answered, anything else kept as other."""
    received: list[str] = []

    async def handler(conn: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            await serve_one(conn)

    async def serve_one(conn: ServerConnection) -> None:
        async for raw in conn:
            assert isinstance(raw, str)
            received.append(raw)
            message = json.loads(raw)
            if message["type"] == "connection_init":
                await conn.send('{"type":"connection_ack"}')
            elif message["type"] == "go":
                for sequence in (7, 8):
                    payload = {"data": {"commentAdded": {"id": "c", "sequence": sequence}}}
                    await conn.send(json.dumps({"id": "1", "type": "next", "payload": payload}))
                odds = {"data": {"oddsUpdated": {"seq": 3, "lastTrade": {"id": "t9"}}}}
                await conn.send(json.dumps({"id": "2", "type": "next", "payload": odds}))
                await conn.send('{"type":"ping"}')
                await conn.send('{"id":"1","type":"complete"}')
            elif message["type"] == "pong":
                await conn.close(4400, "bye")

    async with serve(handler, "127.0.0.1", 0, subprotocols=["graphql-transport-ws"]) as server:  # type: ignore[list-item]
        port = server.sockets[0].getsockname()[1]
        ws = await fanout_client.connect(
            f"ws://127.0.0.1:{port}/graphql", "graphql-transport-ws", 10
        )
        ws.send('{"type":"connection_init","payload":{}}')
        assert await ws.recv(10) == '{"type":"connection_ack"}'
        got: list[tuple[Any, int]] = []

        def on_next(sock: LightSocket, mark: Any, order: int, arrived: float) -> None:
            assert sock is ws and arrived == ws.arrived > 0
            got.append((mark, order))

        ws.deliver_to(on_next)
        ws.send('{"type":"go"}')
        await asyncio.wait_for(asyncio.shield(ws.done), 10)
    assert got == [(7, 7), (8, 8), ("t9", 3)]
    assert ws.other == ['{"id":"1","type":"complete"}']
    assert received == [
        '{"type":"connection_init","payload":{}}',
        '{"type":"go"}',
        '{"type":"pong"}',
    ]
    assert (ws.close_code, ws.close_reason) == (4400, "bye")
    assert json.loads(ws.last_next())["payload"]["data"]["oddsUpdated"]["seq"] == 3


async def test_a_refused_upgrade_is_an_error() -> None:
    async def handler(conn: ServerConnection) -> None:
        await conn.close()

    async with serve(handler, "127.0.0.1", 0, subprotocols=["graphql-transport-ws"]) as server:  # type: ignore[list-item]
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ConnectionError, match="400"):
            # No subprotocol the server speaks: websockets answers 400.
            await fanout_client.connect(f"ws://127.0.0.1:{port}/", "nope", 10)


def test_make_bench_reports_the_churn_against_the_five_percent_goal() -> None:
    """bench.run's fan-out section: one row per churned target, drift from the first tenth's
    VmRSS to the end, PASS within ±5 % and with no failed cycle."""
    from bench.run import BY_NAME, render_churn

    assert BY_NAME["fanout"].args[-2:] == ["--churn", "100000"]
    churns = {
        "shared": {
            "cycles": 100000,
            "rss_kib": [[10000, 80640], [50000, 81000], [100000, 81920]],
            "drift": 81920 / 80640 - 1,
            "seconds": 376.7,
            "server_cpu_ms_per_cycle": 2.0,
            "failures": 0,
        },
        "bare": {
            "cycles": 99990,
            "rss_kib": [[10000, 40960], [100000, 46080]],
            "drift": 0.125,
            "seconds": 122.4,
            "server_cpu_ms_per_cycle": 0.5,
            "failures": 10,
        },
    }
    lines = render_churn(churns, quick=False)
    assert lines[-2:] == [
        "| shared | 100,000 | 376.7 | 2.00 | 78.8 → 80.0 | +1.6 % | ±5 % (M) | **PASS** |",
        "| bare | 99,990 | 122.4 | 0.50 | 40.0 → 45.0 | +12.5 % | ±5 % (M) | **FAIL** |",
    ]
    assert render_churn({}, quick=False) == []


def test_the_fanout_goal_is_cpu_per_delivery_net_of_each_trigger() -> None:
    """bench.fanout's headline: per delivery, each side net of its own no-subscriber baseline
    (judged against 1.5×), and per event with the trigger (informational, never judged); a
    net cost at or below 0 gives no ratio rather than a PASS."""
    from bench.fanout import BARE, ODDS, PER_DELIVERY, PER_EVENT, SHARED, Bench, Result, goals
    from bench.fanout import headline as fanout_headline
    from bench.run import render_fanout

    def result(target: str, cpu: float, base: float, delivered: int = 2000) -> Result:
        r = Result(ODDS, target, 2000, subscribers=2000, events=100, delivered=delivered)
        r.server_cpu, r.base_cpu, r.base_events = cpu, base, 200
        return r

    bench = Bench.__new__(Bench)
    # shared: 0.5 s over 100 events, its trades alone 0.8 s over 200: (0.5 - 0.4) / 2000 = 50 µs
    # bare: 0.07 s, its control messages 0.08 s over 200: (0.07 - 0.04) / 2000 = 15 µs
    bench.results = {
        (ODDS, SHARED, 2000): result(SHARED, 0.5, 0.8),
        (ODDS, BARE, 2000): result(BARE, 0.07, 0.08),
    }
    ratios = fanout_headline(bench)
    per_delivery = ratios[f"{ODDS} × 2000: {PER_DELIVERY}"].value
    assert per_delivery == pytest.approx(50 / 15)
    assert ratios[f"{ODDS} × 2000: {PER_EVENT}"].value == pytest.approx(5.0 / 0.7)
    assert goals(ratios) == {f"{ODDS} × 2000: {PER_DELIVERY}": 1.5}
    document = {
        "ratios": {name: ratio.as_json() for name, ratio in ratios.items()},
        "figures": {"results": [], "goals": goals(ratios)},
    }
    lines = render_fanout(document, quick=False)
    assert f"- {ODDS} × 2000: {PER_DELIVERY}: 3.33× (goal ≤ 1.5×: **FAIL**)" in lines
    assert f"- {ODDS} × 2000: {PER_EVENT}: 7.14× (no goal)" in lines

    bench.results[(ODDS, BARE, 2000)] = result(BARE, 0.03, 0.08)  # net below 0: noise
    ratios = fanout_headline(bench)
    assert math.isnan(ratios[f"{ODDS} × 2000: {PER_DELIVERY}"].value)
    document["ratios"] = {name: ratio.as_json() for name, ratio in ratios.items()}
    assert (
        f"- {ODDS} × 2000: {PER_DELIVERY}: –× (goal ≤ 1.5×: no verdict, a net cost ≤ 0 in this "
        "run)" in render_fanout(document, quick=False)
    )
