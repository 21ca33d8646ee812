"""swimguard: SWIM + Lifeguard membership, wire-compatible with HashiCorp memberlist."""

from __future__ import annotations

__version__ = "0.1.0"
