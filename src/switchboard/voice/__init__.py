"""The voice layer: turn-taking over any audio transport (see `port.AudioPort`)."""
