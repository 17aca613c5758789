"""Model providers: the local offline models and the remote APIs, behind one interface per capability."""
