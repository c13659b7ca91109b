"""Speech: audio utilities, VAD, STT and TTS providers behind the interfaces in `base`."""
