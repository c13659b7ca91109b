from __future__ import annotations

import pytest

from switchboard.speech import audio as A
from switchboard.speech.base import EmptyAudio, ProviderFailure
from switchboard.speech.stt.vira import ViraSTT
from switchboard.speech.tts.vira import ViraTTS
from switchboard.telephony.call import Audio

from .fakes.server import serve
from .fakes.vira import TOKEN, FakeVira


async def test_stt_uploads_wav_and_reads_text(speech_clip: Audio) -> None:
    fake = FakeVira()
    async with serve(fake.app()) as url:
        stt = ViraSTT(url=url + "/stt", token=TOKEN)
        result = await stt.transcribe(A.resample(speech_clip, 8000))
    assert result.text == "بله علاقه دارم" and result.language == "fa"
    assert fake.uploads[0]["rate"] == 16000 and fake.uploads[0]["language"] == "fa"


async def test_empty_audio_file_means_hangup() -> None:
    fake = FakeVira()
    async with serve(fake.app()) as url:
        with pytest.raises(EmptyAudio, match="Empty Audio file"):
            await ViraSTT(url=url + "/stt", token=TOKEN).transcribe(A.silence(1, 8000))


@pytest.mark.parametrize("mode", ["balance", "balance_200"])
async def test_balance_errors_are_provider_failures(mode: str, speech_clip: Audio) -> None:
    fake = FakeVira(mode=mode)
    async with serve(fake.app()) as url:
        with pytest.raises(ProviderFailure, match="balance|credit") as info:
            await ViraSTT(url=url + "/stt", token=TOKEN, backoff=0.01).transcribe(speech_clip)
        assert not info.value.retryable
        with pytest.raises(ProviderFailure):
            await ViraTTS(url=url + "/tts", token=TOKEN, backoff=0.01).synthesize("سلام")


async def test_busy_is_retried_and_bad_token_fails(speech_clip: Audio) -> None:
    fake = FakeVira(busy=2)
    async with serve(fake.app()) as url:
        result = await ViraSTT(url=url + "/stt", token=TOKEN, backoff=0.01).transcribe(speech_clip)
        assert result.text
        with pytest.raises(ProviderFailure, match="authentication"):
            await ViraSTT(url=url + "/stt", token="bad", backoff=0.01).transcribe(speech_clip)


async def test_tts_returns_wav_audio() -> None:
    fake = FakeVira()
    async with serve(fake.app()) as url:
        tts = ViraTTS(url=url + "/tts", token=TOKEN, voice="female1")
        audio = await tts.synthesize("سلام. خوش آمدید", language="fa")
        chunks = [c async for c in tts.stream("سلام. خوش آمدید", language="fa")]
    assert audio.sample_rate == 22050 and audio.duration == pytest.approx(0.5, abs=0.01)
    assert fake.uploads[0] == {"text": "سلام. خوش آمدید", "language": "fa", "speaker": "female1"}
    assert len(chunks) == 2
