from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from switchboard.speech import audio as A
from switchboard.speech.base import VAD
from switchboard.speech.vad import EndpointSettings, SileroVAD, WebRtcVAD, segment_utterance
from switchboard.telephony.call import Audio

from .conftest import padded

VADS = [SileroVAD, WebRtcVAD]


def run(vad: VAD, audio: Audio, ms: int = 20) -> list:  # type: ignore[type-arg]
    events = []
    for frame in A.frames(audio, ms):
        events.extend(vad.process(frame))
    return events


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("cls", VADS)
def test_start_and_end_around_speech(cls: type, rate: int, speech_clip: Audio) -> None:
    vad = cls(rate, settings=EndpointSettings(min_speech=0.15, end_silence=0.6))
    assert isinstance(vad, VAD)
    events = run(vad, padded(speech_clip, rate, 1.0, 1.5))
    assert [e.kind for e in events] == ["start", "end"]
    start, end = events
    assert 0.85 <= start.at <= 1.2
    speech_end = 1.0 + speech_clip.duration
    assert speech_end + 0.5 <= end.at <= speech_end + 0.9  # end_silence after the last word
    assert end.audio is not None and end.audio.sample_rate == rate
    assert speech_clip.duration <= end.audio.duration <= speech_clip.duration + 0.5


@pytest.mark.parametrize("cls", VADS)
def test_end_silence_setting_moves_the_end(cls: type, speech_clip: Audio) -> None:
    clip = padded(speech_clip, 8000, 0.5, 2.5)
    short = run(cls(8000, settings=EndpointSettings(end_silence=0.4)), clip)[-1].at
    long = run(cls(8000, settings=EndpointSettings(end_silence=1.2)), clip)[-1].at
    assert long - short == pytest.approx(0.8, abs=0.1)


@pytest.mark.parametrize("cls", VADS)
def test_silence_and_blips_give_no_events(cls: type, speech_clip: Audio) -> None:
    assert run(cls(8000), A.silence(3, 8000)) == []
    blip = A.resample(speech_clip, 8000)
    blip = Audio(blip.pcm[: int(0.06 * 8000) * 2 * 1], 8000)  # 60 ms < min_speech 0.3
    assert run(cls(8000, settings=EndpointSettings(min_speech=0.3)), padded(blip, 8000, 1, 1)) == []


@pytest.mark.parametrize("cls", VADS)
def test_two_utterances_and_reset(cls: type, speech_clip: Audio) -> None:
    one = padded(speech_clip, 8000, 0.5, 1.2)
    vad = cls(8000)
    events = run(vad, A.concat([one, one]))
    assert [e.kind for e in events] == ["start", "end", "start", "end"]
    vad.process(A.resample(speech_clip, 8000).pcm)  # mid-utterance...
    vad.reset()  # ...forgotten
    assert run(vad, A.silence(2, 8000)) == []


def test_silero_rejects_other_rates() -> None:
    with pytest.raises(ValueError):
        SileroVAD(22050)


async def feed(audio: Audio, ms: int = 20) -> AsyncIterator[bytes]:
    for frame in A.frames(audio, ms):
        yield frame


@pytest.mark.parametrize("cls", VADS)
async def test_segment_utterance_returns_after_end_silence(cls: type, speech_clip: Audio) -> None:
    stream = padded(speech_clip, 8000, 1.0, 5.0)
    consumed = 0

    async def counting() -> AsyncIterator[bytes]:
        nonlocal consumed
        async for frame in feed(stream):
            consumed += len(frame)
            yield frame

    vad = cls(8000, settings=EndpointSettings(end_silence=0.6))
    got = await segment_utterance(counting(), vad, max_duration=20, max_silence=5)
    assert speech_clip.duration <= got.duration <= speech_clip.duration + 0.5
    # It stopped listening soon after the speech ended, not at the end of the stream.
    assert consumed / 2 / 8000 < 1.0 + speech_clip.duration + 1.0


@pytest.mark.parametrize("cls", VADS)
async def test_segment_utterance_no_speech_is_empty(cls: type) -> None:
    got = await segment_utterance(feed(A.silence(10, 8000)), cls(8000), max_duration=20, max_silence=2)
    assert got.pcm == b"" and got.sample_rate == 8000


async def test_segment_utterance_caps_duration(speech_clip: Audio) -> None:
    long_talk = A.concat([A.resample(speech_clip, 8000)] * 6)  # ~11 s without a pause
    got = await segment_utterance(feed(padded(long_talk, 8000, 0.5, 2)), SileroVAD(8000),
                                  max_duration=4.0, max_silence=3)
    assert 3.0 <= got.duration <= 4.0


async def test_segment_utterance_stream_ends_mid_speech(speech_clip: Audio) -> None:
    clip = A.concat([A.silence(0.5, 8000), A.resample(speech_clip, 8000)])
    got = await segment_utterance(feed(clip), WebRtcVAD(8000), max_duration=20, max_silence=3)
    assert got.duration >= speech_clip.duration - 0.2
