"""Op profiles: LiteRT's C profiler on the host, benchmark_model's op tables, attribution to blocks."""
