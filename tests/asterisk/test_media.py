"""Streaming audio through an externalMedia channel in the call's bridge (real RTP over loopback UDP)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from switchboard.telephony.asterisk.backend import AsteriskBackend
from switchboard.telephony.call import DialOutcome
from switchboard.voice.port import NullSink
from tests.asterisk.conftest import APP, settings_for
from tests.asterisk.double import AriDouble
from tests.asterisk.test_session import assert_clean


@pytest.mark.parametrize("fmt,rate", [("ulaw", 8000), ("slin16", 16000)])
async def test_external_media_streams_both_ways(tmp_path: Path, fmt: str, rate: int) -> None:
    async with AriDouble(scale=0.25) as ari:
        ari.sim.add_context("talks", "exten => s,1,Answer()\n same => n,Wait(1)\n"
                                     " same => n,Playback(custom/reply)\n same => n,Wait(600)")
        ari.sim.route("0912", "talks")
        backend = AsteriskBackend.from_settings(settings_for(ari, tmp_path, external_media_format=fmt))
        await backend.start()
        try:
            await ari.wait_ws(APP)
            outcome, call = await backend.originate("0912", line="02150001000")
            assert outcome is DialOutcome.ANSWERED and call is not None
            stream = await call.external_media()
            assert stream.sample_rate == rate
            media = next(c for c in ari.sim.live_channels() if c.kind == "media")
            assert media.id in ari.sim.bridges[call.bridge_id].channels

            frame_bytes = rate // 50 * 2
            talk = {"frames": 0, "talk": 0}
            done = asyncio.Event()

            class Sink(NullSink):
                def on_frame(self, frame: bytes) -> None:
                    assert len(frame) == frame_bytes
                    talk["frames"] += 1
                    if np.abs(np.frombuffer(frame, dtype="<i2")).max() > 2000:
                        talk["talk"] += 1
                    elif talk["talk"] > 100:
                        done.set()  # the reply is over

            stream.attach(Sink())
            await asyncio.wait_for(done.wait(), 5)
            assert 110 <= talk["talk"] <= 150  # the 2.72 s reply, in 20 ms frames

            t = np.arange(rate // 2) / rate
            sent = (np.sin(2 * np.pi * 440 * t) * 12000).astype("<i2")
            loop = asyncio.get_running_loop()
            start = loop.time()
            pcm = sent.tobytes()
            for n, i in enumerate(range(0, len(pcm), frame_bytes)):  # paced, as the voice layer sends
                await asyncio.sleep(max(0.0, start + n * 0.02 - loop.time()))
                stream.send(pcm[i:i + frame_bytes])
            await asyncio.sleep(0.15)
            got = np.frombuffer(bytes(media.media_received), dtype="<i2")
            assert len(got) == len(sent)
            assert np.corrcoef(sent.astype(np.float64), got.astype(np.float64))[0, 1] > 0.99

            await stream.close()
            assert media.destroyed and ari.sim.bridges[call.bridge_id].channels == [call.channel_id]
            assert not call.hung_up
            await call.hangup()
            await assert_clean(ari)
        finally:
            await backend.close()
