"""The wire protocol: the .proto, its generated stubs, and the one tensor codec."""
