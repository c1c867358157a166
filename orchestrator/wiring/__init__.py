"""What the worker is built from: the city inventory (inventory), the adapters it
describes (identity, service), and the engine, sink and Temporal worker (worker)."""
