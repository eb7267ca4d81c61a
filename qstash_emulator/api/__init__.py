"""HTTP handlers, one module per API resource."""
