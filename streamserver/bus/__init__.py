"""The event bus: show events to every node, each with the show's sequence number."""
