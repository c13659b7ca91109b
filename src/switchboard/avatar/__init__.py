"""Video avatars for browser calls: an `AvatarProvider` per vendor, chosen by `AVATAR_PROVIDER`.

The agent's conversation never depends on an avatar: the browser call carries the agent's audio
itself, and the page shows an avatar only while its provider works (audio only otherwise).
"""

from switchboard.avatar.base import AvatarProvider, AvatarSession, AvatarUnavailable

__all__ = ["AvatarProvider", "AvatarSession", "AvatarUnavailable"]
