"""The engine process layer: the wire protocol, the server and its socket transport, the clients, the job queue
and the job runner (``docs/architecture.md``)."""
