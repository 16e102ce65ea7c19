"""Checkpoint I/O. ``ours``: our directory format (config.json + tokenizer.model + safetensors)."""
