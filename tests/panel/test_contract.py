from switchboard.panel.contract import ReportResultRequest, parse_next_batch

GOOD = {
    "call_allowed": True,
    "batch": {
        "batch_id": 77,
        "numbers": [{"id": 1, "phone_number": "09121234567"}, {"id": "2", "phone_number": "+989121234568"}],
    },
    "active_scenarios": [{"id": 3, "name": "sales"}],
    "inbound_agents": [{"id": 9, "phone_number": "09120000009"}],
    "outbound_agents": [{"id": 8, "phone_number": "09120000008"}],
    "outbound_lines": [{"id": 5, "phone_number": "02191001234"}],
    "timezone": "+0330",
    "server_time": "2026-03-20T09:00:00+03:30",
}


def test_full_response():
    b = parse_next_batch(GOOD)
    assert b.error is None and b.call_allowed and b.batch_id == 77
    assert [(n.id, n.e164, n.national) for n in b.numbers] == [
        (1, "+989121234567", "9121234567"),
        ("2", "+989121234568", "9121234568"),
    ]
    assert b.numbers[0].phone_number == "09121234567"
    assert [s.name for s in b.active_scenarios] == ["sales"]
    assert b.outbound_lines[0].phone_number == "02191001234"
    assert b.server_time.utcoffset().total_seconds() == 3.5 * 3600


def test_legacy_fields():
    data = {
        "call_allowed": True,
        "batch": {"batch_id": "b1", "numbers": []},
        "active_scenarios": ["sales", "survey"],
        "active_agents": [{"id": 1, "phone_number": 9120000001}],
    }
    b = parse_next_batch(data)
    assert b.error is None
    assert [(s.id, s.name) for s in b.active_scenarios] == [(None, "sales"), (None, "survey")]
    assert [a.phone_number for a in b.outbound_agents] == ["9120000001"]
    assert b.timezone is None  # no zone given: contacts fall back to their own / PANEL_TIMEZONE


def test_bad_numbers_are_rejected_alone():
    data = dict(
        GOOD,
        batch={
            "batch_id": 1,
            "numbers": [
                {"id": 1, "phone_number": "09121234567"},
                {"id": 2, "phone_number": "12"},
                {"id": 3},
                "junk",
                {"id": 4, "phone_number": "0912 123 4567"},  # same subscriber as id 1
                {"id": 5, "phone_number": "۰۹۱۲۱۲۳۴۵۶۹"},
            ],
        },
    )
    b = parse_next_batch(data)
    assert b.error is None
    assert [n.id for n in b.numbers] == [1, 5]
    reasons = {r.id: r.reason for r in b.rejected}
    assert "too short" in reasons[2]
    assert "phone_number" in reasons[3] and "required" in reasons[3].lower()
    assert "duplicate" in reasons[4]
    assert any(r.id is None and "numbers[3]" in r.reason for r in b.rejected)


def test_malformed_envelopes_are_no_batch_with_reason():
    cases = {
        "not a dict": ([1, 2], "expected a JSON object"),
        "no call_allowed": ({"batch": None}, "call_allowed"),
        "bad bool": ({"call_allowed": "maybe"}, "call_allowed"),
        "numbers not list": ({"call_allowed": True, "batch": {"numbers": "x"}}, "batch.numbers"),
        "bad timezone": ({"call_allowed": True, "timezone": "+99:99"}, "timezone"),
        "bad scenarios": ({"call_allowed": True, "active_scenarios": [{"id": 1}]}, "active_scenarios.0.name"),
    }
    for name, (data, needle) in cases.items():
        b = parse_next_batch(data)
        assert not b.call_allowed and b.numbers == [], name
        assert b.error and needle in b.error, (name, b.error)


def test_report_status_validation():
    base = dict(company="c", phone_number="0912", attempted_at="2026-01-01T00:00:00")
    r = ReportResultRequest.model_validate(dict(base, status="failed:trunk_busy"))
    assert r.attempted_at.tzinfo is not None
    for bad in ("", "exploded"):
        try:
            ReportResultRequest.model_validate(dict(base, status=bad))
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted")


async def test_client_and_local_panel_share_the_panel_port():
    from switchboard.panel.client import PanelClient
    from switchboard.panel.local import LocalPanel
    from switchboard.panel.port import Panel
    from switchboard.settings import Settings

    client = PanelClient("http://127.0.0.1:9", "t")
    local = LocalPanel(store=None, settings=Settings(_env_file=None))  # type: ignore[arg-type]
    assert isinstance(client, Panel) and isinstance(local, Panel)
    await client.aclose()
