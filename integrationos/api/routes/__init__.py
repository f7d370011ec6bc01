"""HTTP endpoints, one module per resource; each exports its ``routes`` list."""
