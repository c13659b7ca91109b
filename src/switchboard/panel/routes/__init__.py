"""Built-in panel routes, one module per resource."""
