"""Websockets to shoppers in branch rooms: the envelope, room logs, and the hub."""
