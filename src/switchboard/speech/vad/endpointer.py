"""The endpointing state machine shared by every VAD: per-frame speech decisions in, start/end out.

Detectors only say "this 10–32 ms frame is speech or not"; turning that into utterances (ignore
blips shorter than `min_speech`, end after `end_silence` of quiet, keep a little audio from before
the start so the first phoneme is not clipped) is the same for all of them, so it lives here.

On request (`pause_after`) it also reports a *pause*: the caller has been quiet for that long inside
an utterance, which may yet go on. Its audio is exactly what the "end" would carry if no speech came
back (all but `TAIL` of the trailing quiet is trimmed either way), so work on it — a transcription —
can start while the end is still being waited for (`switchboard.voice.early`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from switchboard.speech.base import VADEvent
from switchboard.speech.audio import Audio

TAIL = 0.1  # seconds of trailing quiet an utterance keeps (a natural ending, not a clipped one)


@dataclass(slots=True)
class EndpointSettings:
    min_speech: float = 0.15  # seconds of speech before "start" fires
    end_silence: float = 0.6  # seconds of silence after speech before "end" fires
    pre_roll: float = 0.2  # seconds of audio kept from before the start
    max_utterance: float = 30.0  # force an "end" after this much speech
    pause_after: float | None = None  # report a "pause" after this much quiet inside an utterance


class Endpointer:
    def __init__(self, sample_rate: int, frame_samples: int, settings: EndpointSettings) -> None:
        self.sample_rate = sample_rate
        self.frame_samples = frame_samples
        self.settings = settings
        self.frame_seconds = frame_samples / sample_rate
        self.pause_after = settings.pause_after
        self.reset()

    def reset(self) -> None:
        self._t = 0.0  # stream time at the end of the last frame
        self._in_speech = False
        self._speech_run = 0  # consecutive speech frames while idle
        self._silence_run = 0  # consecutive silent frames while in speech
        pre = max(1, round(self.settings.pre_roll / self.frame_seconds))
        self._history: deque[bytes] = deque(maxlen=pre + int(
            self.settings.min_speech / self.frame_seconds) + 2)
        self._utterance: list[bytes] = []
        self._start_at = 0.0
        self._paused = False  # a "pause" was reported in the current quiet

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def time(self) -> float:
        return self._t

    def push(self, frame: bytes, is_speech: bool) -> list[VADEvent]:
        events: list[VADEvent] = []
        self._t += self.frame_seconds
        s = self.settings
        if not self._in_speech:
            self._history.append(frame)
            self._speech_run = self._speech_run + 1 if is_speech else 0
            if self._speech_run * self.frame_seconds >= s.min_speech - 1e-9:
                self._in_speech = True
                self._silence_run = 0
                pre = round(s.pre_roll / self.frame_seconds)
                keep = min(len(self._history), self._speech_run + pre)
                self._utterance = list(self._history)[-keep:]
                self._start_at = max(0.0, self._t - self._speech_run * self.frame_seconds)
                events.append(VADEvent("start", round(self._start_at, 4)))
                self._history.clear()
            return events
        self._utterance.append(frame)
        if is_speech:
            self._silence_run = 0
            self._paused = False
        else:
            self._silence_run += 1
        too_long = self._t - self._start_at >= s.max_utterance
        quiet = self._silence_run * self.frame_seconds
        if quiet >= s.end_silence - 1e-9 or too_long:
            events.append(VADEvent("end", round(self._t, 4), self._trimmed()))
            self._in_speech = False
            self._speech_run = 0
            self._silence_run = 0
            self._paused = False
            self._utterance = []
        elif (self.pause_after is not None and not self._paused
              and quiet >= max(self.pause_after, self._tail_frames() * self.frame_seconds) - 1e-9):
            self._paused = True
            events.append(VADEvent("pause", round(self._t, 4), self._trimmed()))
        return events

    def _tail_frames(self) -> int:
        return round(TAIL / self.frame_seconds)

    def _trimmed(self) -> Audio:
        """The utterance without most of its trailing quiet (a short tail kept for natural endings)."""
        cut = max(0, self._silence_run - self._tail_frames())
        kept = self._utterance[:len(self._utterance) - cut] if cut else self._utterance
        return Audio(b"".join(kept), self.sample_rate)

    def flush(self) -> list[VADEvent]:
        """End an utterance in progress (the stream closed mid-speech)."""
        if not self._in_speech:
            return []
        audio = Audio(b"".join(self._utterance), self.sample_rate)
        self._in_speech = False
        self._utterance = []
        return [VADEvent("end", round(self._t, 4), audio)]

    def current_audio(self) -> Audio:
        """The utterance collected so far (empty when idle)."""
        return Audio(b"".join(self._utterance), self.sample_rate)
