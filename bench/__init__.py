"""Benchmarks of the bus (`techne bench <stage>`): kept outside the production packages."""
