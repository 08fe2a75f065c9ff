"""The passthrough media relay: encoded RTP from one publisher to every viewer.

`tap` holds every use of aiortc/aioice private names; `keyframes` is pure; `fanout`
forwards packets without decoding; `sessions` owns peer lifecycles.
"""
