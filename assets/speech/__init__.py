"""The speech task: Whisper N-best labeling, preference pairs, and the ASR loop."""
