"""Voice activity detection: Silero (default) and WebRTC, with shared endpointing."""

from switchboard.speech.vad.endpointer import Endpointer, EndpointSettings
from switchboard.speech.vad.segment import segment_utterance
from switchboard.speech.vad.silero import SileroVAD
from switchboard.speech.vad.webrtc import WebRtcVAD

__all__ = ["EndpointSettings", "Endpointer", "SileroVAD", "WebRtcVAD", "segment_utterance"]
