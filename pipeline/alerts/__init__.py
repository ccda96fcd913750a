"""The alerts wing: detection (crises, spikes, fast-growing posts), webhooks, scheduled digests and transparency
risks. Detection lives in detection.py, not here, so that importing the cue lists (rules.py does) stays light."""
