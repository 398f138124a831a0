"""Use cases: accept an order, process it, reconcile what was interrupted."""
