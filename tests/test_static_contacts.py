"""STATIC_CONTACTS: a list of numbers to dial when there is no panel; bad numbers are rejected."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rich.console import Console

from switchboard.app import run_main
from switchboard.settings import Settings


def test_static_contacts_are_dialed_and_bad_ones_rejected(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", logs_dir=tmp_path / "logs",  # type: ignore[call-arg]
                        static_contacts="09121110001, +989121110002,12, ۰۹۱۲۱۱۱۰۰۰۳", max_attempts=1)
    out = tmp_path / "out.txt"
    assert run_main(settings, Console(file=out.open("w"), width=200), contacts=0, audio=False) == 0
    db = sqlite3.connect(tmp_path / "data" / "switchboard.db")
    phones = sorted(p for (p,) in db.execute("select phone_e164 from contacts"))
    assert phones == ["+989121110001", "+989121110002", "+989121110003"]  # Persian digits accepted
    dialed = sorted(p for (p,) in db.execute("select distinct phone_e164 from calls where direction='outbound'"))
    assert dialed == phones
    assert "+989121110001" in out.read_text()
