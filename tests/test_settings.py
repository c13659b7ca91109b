"""Every setting is documented in .env.example, and secrets never print."""

from __future__ import annotations

from pathlib import Path

from switchboard.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_env_example_lists_every_setting_with_a_comment() -> None:
    lines = {line.split("=", 1)[0]: line for line in (ROOT / ".env.example").read_text().splitlines()
             if line and not line.startswith("#") and "=" in line}
    missing = [name.upper() for name in Settings.model_fields if name.upper() not in lines]
    assert missing == [], f"add these to .env.example: {missing}"
    undocumented = [k for k, line in lines.items() if "  # " not in line or not line.split("  # ", 1)[1].strip()]
    assert undocumented == [], f"give these a one-line comment: {undocumented}"
    unknown = [k for k in lines if k.lower() not in Settings.model_fields]
    assert unknown == [], f".env.example lists settings that do not exist: {unknown}"


def test_secrets_do_not_show_in_repr(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PANEL_API_TOKEN", "super-secret-token")
    monkeypatch.setenv("ARI_PASSWORD", "pbx-password")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    text = repr(s) + str(s.model_dump())
    assert "super-secret-token" not in text and "pbx-password" not in text
    assert s.panel_api_token.get_secret_value() == "super-secret-token"
