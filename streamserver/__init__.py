"""lianbo's edges: HTTP, WHIP/WHEP, the media relay, storage adapters and the CLI."""
